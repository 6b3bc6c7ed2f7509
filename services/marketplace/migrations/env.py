"""Alembic environment of the marketplace database."""

from sous_marketplace.adapters.tables import metadata
from sous_service.migration_env import run_migrations

run_migrations(metadata)

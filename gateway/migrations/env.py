"""Alembic environment for the gateway's database (configured in code by `sous_service.migrate`)."""

from sous_gateway.adapters.tables import metadata
from sous_service.migration_env import run_migrations

run_migrations(metadata)

from sous_catalog.adapters.tables import metadata
from sous_service.migration_env import run_migrations

run_migrations(metadata)

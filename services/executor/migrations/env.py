from sous_events.tables import metadata as event_metadata
from sous_executor.adapters.tables import metadata
from sous_service.migration_env import run_migrations

run_migrations([event_metadata, metadata])

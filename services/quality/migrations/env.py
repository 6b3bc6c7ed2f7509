from sous_service.migration_env import run_migrations

run_migrations()

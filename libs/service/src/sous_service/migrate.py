"""Alembic, configured in code: one history per service, run against the service's own database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from sous_service.config import ServiceSettings
from sous_service.db import ensure_database


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(settings: ServiceSettings, migrations_dir: Path, revision: str = "head") -> None:
    """Create the service's database if missing, then migrate it."""
    asyncio.run(ensure_database(settings))
    command.upgrade(alembic_config(migrations_dir, settings.service_database_url), revision)


async def upgrade_async(settings: ServiceSettings, migrations_dir: Path, revision: str = "head") -> None:
    """The same from inside a running event loop (tests, embedded stack)."""
    await ensure_database(settings)
    await asyncio.to_thread(command.upgrade, alembic_config(migrations_dir, settings.service_database_url), revision)

"""Alembic, configured in code: one history per service, run against the service's own database.

A service migrates at every start (`serve --migrate`). When its database is already at the head of its
history, which is every start but the first after an upgrade, Alembic is neither imported nor run: the
heads are read from the version files' `revision` / `down_revision` assignments and compared with the
database's `alembic_version` rows, which spares each service's start the import of Alembic and of its
migration environment.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from sous_service.config import ServiceSettings
from sous_service.db import ensure_database

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def _assigned(module: ast.Module, name: str) -> object:
    for node in module.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
                return ast.literal_eval(node.value)
    raise LookupError(name)


def head_revisions(migrations_dir: Path) -> frozenset[str]:
    """The revisions no other revision of the history builds on (read, never imported)."""
    revisions: set[str] = set()
    built_on: set[str] = set()
    for path in sorted((migrations_dir / "versions").glob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        revision = _assigned(module, "revision")
        down = _assigned(module, "down_revision")
        if not isinstance(revision, str):
            raise ValueError(f"{path.name}: revision is not a string")
        revisions.add(revision)
        if isinstance(down, str):
            built_on.add(down)
        elif isinstance(down, tuple | list):
            built_on.update(str(d) for d in down)
    return frozenset(revisions - built_on)


async def database_revisions(database_url: str) -> frozenset[str]:
    """The revisions the database is at; empty before its first migration."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(str(row[0]) for row in rows)
    except ProgrammingError:  # no alembic_version table: never migrated
        return frozenset()
    finally:
        await engine.dispose()


async def is_at_head(settings: ServiceSettings, migrations_dir: Path) -> bool:
    heads = head_revisions(migrations_dir)
    return bool(heads) and await database_revisions(settings.service_database_url) == heads


def _alembic_upgrade(migrations_dir: Path, database_url: str, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def upgrade(settings: ServiceSettings, migrations_dir: Path, revision: str = "head") -> None:
    """Create the service's database if missing, then migrate it (nothing to do when already at head)."""

    async def prepare() -> bool:
        await ensure_database(settings)
        return revision == "head" and await is_at_head(settings, migrations_dir)

    if not asyncio.run(prepare()):
        _alembic_upgrade(migrations_dir, settings.service_database_url, revision)


async def upgrade_async(settings: ServiceSettings, migrations_dir: Path, revision: str = "head") -> None:
    """The same from inside a running event loop (tests, embedded stack)."""
    await ensure_database(settings)
    if revision == "head" and await is_at_head(settings, migrations_dir):
        return
    await asyncio.to_thread(_alembic_upgrade, migrations_dir, settings.service_database_url, revision)

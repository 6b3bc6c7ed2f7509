"""`serve --migrate` at every start: Alembic runs only when the database is behind its history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from sous_service.config import ServiceSettings
from sous_service.migrate import database_revisions, head_revisions, is_at_head, upgrade_async

pytestmark = pytest.mark.integration

QUALITY_HISTORY = Path(__file__).resolve().parents[4] / "services" / "quality" / "migrations"

NEW_REVISION = '''"""A table added by a later release."""
from alembic import op
import sqlalchemy as sa

revision = "9001"
down_revision = "{down}"


def upgrade() -> None:
    op.create_table("added_later", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("added_later")
'''


def settings_for(database_url: str) -> ServiceSettings:
    url = make_url(database_url)
    server = url.set(database="postgres").render_as_string(hide_password=False)
    return ServiceSettings(env="test", database_url=server, database_name=url.database or "")


async def table_exists(database_url: str, name: str) -> bool:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name})
            return bool(found)
    finally:
        await engine.dispose()


async def test_a_database_is_migrated_once_then_found_at_head_and_a_new_revision_still_runs(
    fresh_database: str, tmp_path: Path
) -> None:
    history = tmp_path / "migrations"
    shutil.copytree(QUALITY_HISTORY, history, ignore=shutil.ignore_patterns("__pycache__"))
    settings = settings_for(fresh_database)

    assert await database_revisions(fresh_database) == frozenset()
    assert not await is_at_head(settings, history)
    await upgrade_async(settings, history)
    assert await database_revisions(fresh_database) == head_revisions(history)
    assert await is_at_head(settings, history)

    (old_head,) = head_revisions(history)
    (history / "versions" / "9001_added_later.py").write_text(NEW_REVISION.format(down=old_head))
    assert not await is_at_head(settings, history)
    await upgrade_async(settings, history)
    assert await table_exists(fresh_database, "added_later")
    assert await database_revisions(fresh_database) == {"9001"}

"""A view's reads share one snapshot: a writer committing between two of them changes neither."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_service.config import ServiceSettings
from sous_service.db import create_engine, create_session_factory, snapshot_session

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(ServiceSettings(database_url=fresh_database, database_pool_size=2))
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE parents (id int PRIMARY KEY, note text NOT NULL)"))
        await conn.execute(text("CREATE TABLE children (parent_id int NOT NULL)"))
        await conn.execute(text("INSERT INTO parents VALUES (1, 'none yet')"))
    yield eng
    await eng.dispose()


async def _commit_a_child(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO children VALUES (1)"))
        await conn.execute(text("UPDATE parents SET note = 'one child' WHERE id = 1"))


async def test_a_commit_between_two_reads_is_seen_by_neither(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    async with snapshot_session(sessions) as session:
        note = (await session.execute(text("SELECT note FROM parents WHERE id = 1"))).scalar_one()
        await _commit_a_child(engine)
        count = (await session.execute(text("SELECT count(*) FROM children"))).scalar_one()
    assert (note, count) == ("none yet", 0)
    async with snapshot_session(sessions) as session:
        note = (await session.execute(text("SELECT note FROM parents WHERE id = 1"))).scalar_one()
        count = (await session.execute(text("SELECT count(*) FROM children"))).scalar_one()
    assert (note, count) == ("one child", 1)


async def test_a_snapshot_session_writes_nothing(engine: AsyncEngine) -> None:
    async with snapshot_session(create_session_factory(engine)) as session:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            await session.execute(text("INSERT INTO children VALUES (2)"))


async def test_the_pooled_connection_goes_back_to_read_committed_and_writable(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    async with snapshot_session(sessions) as session:
        await session.execute(text("SELECT 1"))
    for n in range(2):  # both pooled connections
        async with sessions() as session, session.begin():
            level = (await session.execute(text("SHOW transaction_isolation"))).scalar_one()
            read_only = (await session.execute(text("SHOW transaction_read_only"))).scalar_one()
            assert (level, read_only) == ("read committed", "off")
            await session.execute(text("INSERT INTO children VALUES (:n)"), {"n": 10 + n})

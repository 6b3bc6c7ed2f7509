"""Statements sent to the driver connection of a session's transaction, on a real PostgreSQL: they belong to
that transaction (its rollback undoes them, even when one is its first statement), JSON columns decode as
through SQLAlchemy, and errors are SQLAlchemy's."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sous_events import driver
from sous_local.testing import eventually, terminate_backend

pytestmark = pytest.mark.integration


@pytest.fixture
async def notes(engine: AsyncEngine) -> str:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id text PRIMARY KEY, body jsonb NOT NULL)"))
    return "notes"


async def count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(text("SELECT count(*) FROM notes"))).scalar_one())


async def test_the_first_statement_of_a_transaction_is_inside_it(
    sessions: async_sessionmaker[AsyncSession], notes: str
) -> None:
    async with sessions() as session, session.begin():
        await driver.execute(session, "INSERT INTO notes VALUES ($1, $2::text::jsonb)", "a", '{"n": 1}')
        assert (await driver.fetchrow(session, "SELECT count(*) FROM notes"))[0] == 1  # type: ignore[index]
        await session.rollback()
    # Sent before anything went through SQLAlchemy: without its BEGIN it would have committed on its own.
    assert await count(sessions) == 0


async def test_statements_share_the_transaction_with_sqlalchemys_and_commit_with_it(
    sessions: async_sessionmaker[AsyncSession], notes: str
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(text("INSERT INTO notes VALUES ('a', '{\"n\": 1}')"))
        await driver.execute(session, "INSERT INTO notes VALUES ($1, $2::text::jsonb)", "b", '{"n": [2, "✓"]}')
        row = await driver.fetchrow(session, "SELECT body FROM notes WHERE id = $1", "b")
        assert row is not None and row["body"] == {"n": [2, "✓"]}  # decoded by the connection's codec
    assert await count(sessions) == 2
    # A later transaction of the same session runs on whatever connection it gets, and is its own.
    async with sessions() as session:
        async with session.begin():
            await driver.execute(session, "DELETE FROM notes WHERE id = $1", "a")
        async with session.begin():
            await driver.execute(session, "DELETE FROM notes WHERE id = $1", "b")
            await session.rollback()
    assert [r["id"] for r in await _ids(sessions)] == ["b"]


async def _ids(sessions: async_sessionmaker[AsyncSession]) -> list[driver.Record]:
    async with sessions() as session, session.begin():
        return await driver.fetch(session, "SELECT id FROM notes ORDER BY id")


async def test_a_constraint_is_an_integrity_error_and_a_savepoint_keeps_the_transaction(
    sessions: async_sessionmaker[AsyncSession], notes: str
) -> None:
    async with sessions() as session, session.begin():
        await driver.execute(session, "INSERT INTO notes VALUES ($1, '{}')", "a")
        with pytest.raises(sa_exc.IntegrityError) as conflict:
            async with session.begin_nested():
                await driver.execute(session, "INSERT INTO notes VALUES ($1, '{}')", "a")
        assert not conflict.value.connection_invalidated
        await driver.execute(session, "INSERT INTO notes VALUES ($1, '{}')", "b")
    assert await count(sessions) == 2


async def test_a_pooled_connection_that_died_is_invalidated_by_the_transaction_it_fails(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], notes: str
) -> None:
    """As SQLAlchemy does on a disconnect in its own statements: this engine checks nothing at checkout, so
    without the invalidation every later transaction would get the dead connection back from the pool."""
    async with sessions() as session, session.begin():
        pooled = await driver.transaction_connection(session)
        pid = (await driver.fetchrow(session, "SELECT pg_backend_pid()"))[0]  # type: ignore[index]
    await terminate_backend(engine.url.render_as_string(hide_password=False), pid)

    async def seen_closed() -> bool:
        return bool(pooled.is_closed())

    await eventually(seen_closed, what="the driver to see its backend gone")
    with pytest.raises(sa_exc.DBAPIError) as died:
        async with sessions() as session, session.begin():
            await driver.execute(session, "SELECT 1")
    assert died.value.connection_invalidated
    for _ in range(3):
        async with sessions() as session, session.begin():
            assert (await driver.fetchrow(session, "SELECT pg_backend_pid()"))[0] != pid  # type: ignore[index]

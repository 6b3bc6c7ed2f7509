"""The driver's pool for single statements, on a real PostgreSQL: errors as the engine raises them, and a
connection the server closed is replaced, never handed out again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_local.testing import eventually, terminate_backend
from sous_service.config import ServiceSettings
from sous_service.db import create_engine
from sous_service.statement_pool import StatementPool, connect_arguments

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(engine: AsyncEngine) -> AsyncIterator[StatementPool]:
    statements = StatementPool(engine, max_size=1)
    yield statements
    await statements.close()


def test_the_url_query_options_of_the_dialect_are_not_passed_to_the_driver() -> None:
    url = "postgresql+asyncpg://u:p@db.internal:6432/sous?prepared_statement_cache_size=0"
    arguments = connect_arguments(create_engine(ServiceSettings(database_url=url)))
    assert arguments["statement_cache_size"] == 0 and "prepared_statement_cache_size" not in arguments
    assert (arguments["host"], arguments["port"], arguments["user"], arguments["database"]) == (
        "db.internal",
        6432,
        "u",
        "sous",
    )


async def test_rows_values_and_the_count_of_statements_sent(pool: StatementPool) -> None:
    assert await pool.fetch("SELECT g FROM generate_series(1, $1::int) g", 3) == [(1,), (2,), (3,)]
    row = await pool.fetchrow("SELECT $1::text AS word, $2::int AS n", "naïve ✓", 7)
    assert row is not None and (row["word"], row["n"]) == ("naïve ✓", 7)
    assert await pool.fetchrow("SELECT 1 WHERE false") is None
    assert await pool.fetchval("SELECT current_setting('transaction_isolation')") == "read committed"
    assert pool.statements_sent == 4


async def test_errors_are_the_engines_and_never_show_the_parameters(pool: StatementPool) -> None:
    await pool.fetch("CREATE TABLE words (word text PRIMARY KEY, note text)")
    await pool.fetch("INSERT INTO words VALUES ($1, $2)", "w", "a note")
    with pytest.raises(sa_exc.IntegrityError) as conflict:
        await pool.fetch("INSERT INTO words VALUES ($1, $2)", "w", "secret prompt")
    assert "secret prompt" not in str(conflict.value) and not conflict.value.connection_invalidated
    with pytest.raises(sa_exc.ProgrammingError):
        await pool.fetch("SELECT no_such_column FROM words")
    # The failed statements left the connection usable, with nothing of theirs open on it.
    assert await pool.fetchval("SELECT count(*) FROM words") == 1


async def test_a_statement_whose_backend_is_terminated_fails_as_invalidated_and_the_next_one_runs(
    engine: AsyncEngine, pool: StatementPool
) -> None:
    first = await pool.fetchval("SELECT pg_backend_pid()")
    sleeping = asyncio.create_task(pool.fetchval("SELECT pg_sleep(30)"))

    async def asleep() -> bool:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            return bool(await raw.fetchval("SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $1", first))

    await eventually(asleep, what="the pooled connection to be inside pg_sleep")
    await terminate_backend(engine.url.render_as_string(hide_password=False), first)
    with pytest.raises(sa_exc.DBAPIError) as failed:
        await sleeping
    assert failed.value.connection_invalidated
    # The pool holds one connection, the dead one: the next statement gets a new backend.
    assert await pool.fetchval("SELECT pg_backend_pid()") != first


async def test_an_idle_connection_the_server_closed_is_replaced_at_acquire(
    engine: AsyncEngine, pool: StatementPool
) -> None:
    first = await pool.fetchval("SELECT pg_backend_pid()")
    await terminate_backend(engine.url.render_as_string(hide_password=False), first)

    async def replaced() -> bool:
        # Each try may fail on the closed connection (the driver learns of the close by reading it).
        try:
            return bool(await pool.fetchval("SELECT pg_backend_pid()") != first)
        except sa_exc.DBAPIError as error:
            assert error.connection_invalidated
            return False

    await eventually(replaced, what="a statement on a new backend")

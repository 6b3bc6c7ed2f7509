"""Single statements outside any transaction, sent on the driver's own pooled connections.

The paths every step of a run takes (the step boundary's append, a live stream's read, a start's recipe
read) are each one statement that commits on its own. Sent through the engine, each one pays SQLAlchemy's
pool checkout and check-in, its greenlet hops and its cursor and result objects: about 225 µs of CPU on
the calling process, where the driver's own pooled call costs about 75 µs (uvloop, a two-parameter
SELECT). Transactions of more than one statement stay on the engine.

A connection here never holds session state (no transaction, no SET, no LISTEN, no cursor) when it is
released, so the release skips the driver's reset, a round trip per statement otherwise. Errors are raised
as the engine would raise them (sous_events.driver.as_engine_error). A dead connection is dropped by the
pool and replaced on a later acquire; connecting to a server that is down raises OSError, as through the
engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_events.driver import as_engine_error

# What SQLAlchemy's asyncpg dialect reads from a URL's query for itself, not for asyncpg.connect.
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback")
# Idle connections beyond the first are closed after this long (the driver's pool default).
IDLE_CLOSE_S = 300.0


async def _keep_as_is(connection: asyncpg.Connection) -> None:
    """The release's reset: nothing to reset, since only single statements outside a transaction ran."""


def _closed(connection: asyncpg.Connection) -> bool:
    try:
        return bool(connection.is_closed())
    except asyncpg.InterfaceError:  # the pool took back a connection that closed under the statement
        return True


def connect_arguments(engine: AsyncEngine) -> dict[str, Any]:
    """asyncpg.connect's keyword arguments for the engine's URL, as the engine's dialect derives them."""
    _, options = engine.dialect.create_connect_args(engine.url)
    arguments = dict(options)
    cache_size = arguments.get("prepared_statement_cache_size")
    for key in _DIALECT_ONLY:
        arguments.pop(key, None)
    if cache_size is not None:
        arguments["statement_cache_size"] = int(cache_size)
    return arguments


class StatementPool:
    """The driver's pool of one engine's database, for statements that each commit on their own.

    Connects on first use (from within the event loop that uses it), at most `max_size` connections.
    """

    def __init__(self, engine: AsyncEngine, max_size: int) -> None:
        self._arguments = connect_arguments(engine)
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self.statements_sent = 0

    async def _opened(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        min_size=0,
                        max_size=self.max_size,
                        max_inactive_connection_lifetime=IDLE_CLOSE_S,
                        reset=_keep_as_is,
                        **self._arguments,
                    )
        return self._pool

    async def _call(self, method: str, sql: str, parameters: Sequence[Any]) -> Any:
        pool = await self._opened()
        try:
            connection = await pool.acquire()
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # A server refusing connections (starting up, shutting down): no connection was had.
            raise as_engine_error(error, sql, parameters, closed=True) from error
        try:
            self.statements_sent += 1
            return await getattr(connection, method)(sql, *parameters)
        except asyncpg.InternalClientError as error:
            # The driver's protocol state is lost (a server message arrived while the connection was idle in
            # the pool, e.g. its backend was terminated): this connection must never be used again.
            connection.terminate()
            raise as_engine_error(error, sql, parameters, closed=True) from error
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise as_engine_error(error, sql, parameters, _closed(connection)) from error
        finally:
            await pool.release(connection)

    async def fetch(self, sql: str, *parameters: Any) -> list[asyncpg.Record]:
        """Every row `sql` returns ($1, $2, ... placeholders)."""
        rows: list[asyncpg.Record] = await self._call("fetch", sql, parameters)
        return rows

    async def fetchrow(self, sql: str, *parameters: Any) -> asyncpg.Record | None:
        """The first row `sql` returns, or None."""
        row: asyncpg.Record | None = await self._call("fetchrow", sql, parameters)
        return row

    async def fetchval(self, sql: str, *parameters: Any) -> Any:
        """The first column of the first row `sql` returns, or None."""
        return await self._call("fetchval", sql, parameters)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

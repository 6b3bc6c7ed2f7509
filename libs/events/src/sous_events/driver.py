"""Statements sent to the driver (asyncpg) directly, with errors raised as SQLAlchemy raises them.

A statement sent through SQLAlchemy's connection pays its greenlet hops, cursor and result objects: about
85 µs of CPU per statement over the driver's own call (uvloop, a two-parameter SELECT on a connection in
hand), on every event a consumer applies. The statements of the hot paths are fixed SQL texts with $n
placeholders; they go to the driver connection of the session's transaction (`fetch`, `fetchrow`,
`execute`), and rows come back as the driver's records (by name or by position, no attribute access).
JSON columns are decoded as through SQLAlchemy: the codecs are the connection's, set when it was opened.

Errors are raised as the engine raises them (sqlalchemy.exc: IntegrityError for a constraint,
ProgrammingError, InterfaceError or DBAPIError with `connection_invalidated` when the connection died), so
callers keep one vocabulary of database errors whichever path a statement took.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg import Record as Record  # a row as the driver returns it: by column name or position
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_DRIVER_KEY = "sous.driver_connection"


def as_engine_error(error: BaseException, sql: str, parameters: Sequence[Any], closed: bool) -> BaseException:
    """The sqlalchemy.exc error the engine raises for the driver's `error`; others (OSError, timeouts) as
    they are.

    `closed`: whether the connection is closed after the error (then reported as invalidated: how callers
    recognise an error that a retry on another connection may not repeat)."""
    params = tuple(parameters)
    # Parameters hold prompts and event payloads: never in an error's text (or the logs it reaches).
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(sql, params, error, hide_parameters=True)
    if isinstance(error, asyncpg.SyntaxOrAccessError):
        return sa_exc.ProgrammingError(sql, params, error, hide_parameters=True)
    if isinstance(error, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return sa_exc.InterfaceError(sql, params, error, hide_parameters=True, connection_invalidated=closed)
    if isinstance(error, asyncpg.PostgresError):
        return sa_exc.DBAPIError(sql, params, error, hide_parameters=True, connection_invalidated=closed)
    return error


async def transaction_connection(session: AsyncSession) -> asyncpg.Connection:
    """The driver connection of the session's transaction, with the transaction (and the savepoint of a
    `begin_nested` block) begun on it.

    Looked up once per transaction and savepoint (the session's connection and its driver connection are
    each a greenlet hop away). For sessions in a transaction only: on an AUTOCOMMIT bind every statement
    commits alone.
    """
    return (await _held(session))[1]


async def _held(session: AsyncSession) -> tuple[AsyncConnection, asyncpg.Connection]:
    sync_session = session.sync_session
    scope = (sync_session.get_transaction(), sync_session.get_nested_transaction())
    held = session.info.get(_DRIVER_KEY)
    if held is not None and scope[0] is not None and held[0] == scope:
        return held[1], held[2]
    # Asked of the session, the connection sends a pending SAVEPOINT of a begin_nested block.
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None  # a checked-out connection always has its driver connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN just before a transaction's first statement through it:
        # without that, each statement sent here would commit on its own. The adapter is asked to begin as
        # it would (its transaction is then the one its commit and rollback end); an adapter without that
        # method gets a statement through SQLAlchemy instead, one round trip more.
        begin = getattr(raw.dbapi_connection, "_start_transaction", None)
        try:
            await (begin() if begin is not None else connection.exec_driver_sql("SELECT 1"))
        except Exception as error:
            # The adapter raises its own error class, the driver's error as its cause.
            raise await _failed(connection, driver, error.__cause__ or error, "BEGIN", ()) from error
    session.info[_DRIVER_KEY] = (
        (sync_session.get_transaction(), sync_session.get_nested_transaction()),
        connection,
        driver,
    )
    return connection, driver


async def _failed(
    connection: AsyncConnection, driver: asyncpg.Connection, error: BaseException, sql: str, parameters: Sequence[Any]
) -> BaseException:
    """The error to raise; a connection the error closed is invalidated, as SQLAlchemy does on a disconnect,
    so its pool never hands it out again."""
    closed = bool(driver.is_closed())
    if closed:
        await connection.invalidate()
    return as_engine_error(error, sql, parameters, closed)


async def _call(session: AsyncSession, method: str, sql: str, parameters: Sequence[Any]) -> Any:
    connection, driver = await _held(session)
    try:
        return await getattr(driver, method)(sql, *parameters)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as error:
        raise await _failed(connection, driver, error, sql, parameters) from error


async def fetch(session: AsyncSession, sql: str, *parameters: Any) -> list[asyncpg.Record]:
    """Every row `sql` returns ($1, $2, ... placeholders), in the session's transaction."""
    rows: list[asyncpg.Record] = await _call(session, "fetch", sql, parameters)
    return rows


async def fetchrow(session: AsyncSession, sql: str, *parameters: Any) -> asyncpg.Record | None:
    """The first row `sql` returns, or None, in the session's transaction."""
    row: asyncpg.Record | None = await _call(session, "fetchrow", sql, parameters)
    return row


async def execute(session: AsyncSession, sql: str, *parameters: Any) -> None:
    """Run `sql` for its effect, in the session's transaction."""
    await _call(session, "execute", sql, parameters)

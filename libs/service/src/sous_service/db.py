"""Async engine and sessions; creating a service's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sous_events import jsontext
from sous_service.config import ServiceSettings

# Connections older than this are replaced at checkout: a server or a middlebox that drops idle connections
# without a word never hands the pool a connection that old.
POOL_RECYCLE_S = 1800


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """The service's engine. No ping per checkout (it cost a round trip on every transaction): a connection
    the server closed (a restart, a terminated backend, a proxy that cut it) is already known closed to the
    driver and is replaced at checkout without a round trip; one that dies while in use fails that
    statement, and the pool invalidates every connection it had (SQLAlchemy's disconnect handling), so the
    caller's retry (the run journal's, the consumers') gets a fresh one."""
    engine = create_async_engine(
        settings.service_database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_recycle=POOL_RECYCLE_S,
        json_serializer=jsontext.dumps,
    )
    event.listen(engine.sync_engine, "checkout", refuse_closed_connection)
    return engine


def refuse_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """At checkout: a connection whose socket the driver saw closed is replaced (the pool tries a new one)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the pooled connection was closed by the server")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def snapshot_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose statements all read one snapshot (a read-only REPEATABLE READ transaction).

    For reads of more than one statement: under PostgreSQL's default READ COMMITTED each statement sees what
    had committed when it began, so a writer committing between two of them (a row and the count of its
    children, say) makes the answer contradict itself."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})
        yield session


def _asyncpg_dsn(sqlalchemy_url: str) -> str:
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def create_database(server_url: str, name: str, *, timeout_s: float = 60.0) -> bool:
    """Create database `name` on the server of `server_url` (any database of it, any driver) unless it exists;
    idempotent and safe under races. True when this call created it. The one routine that creates databases:
    services' `migrate`, the embedded stack and the test fixtures all use it."""
    admin = make_url(server_url).set(database="postgres")
    conn = await asyncpg.connect(_asyncpg_dsn(admin.render_as_string(hide_password=False)), timeout=timeout_s)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def ensure_database(settings: ServiceSettings) -> None:
    """Create the service's database when it does not exist yet."""
    name = make_url(settings.service_database_url).database
    if name:
        await create_database(settings.admin_database_url, name)


async def database_is_ready(engine: AsyncEngine) -> bool:
    from sqlalchemy import text

    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False

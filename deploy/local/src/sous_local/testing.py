"""pytest plugin: the real infrastructure tests run against.

By default a session starts an embedded PostgreSQL and the embedded broker on free ports. With
`SOUS_TEST_BROKER=kafka` it starts a single Apache Kafka node instead (the durable lane). Set
`SOUS_TEST_DATABASE_URL` / `SOUS_TEST_KAFKA_BOOTSTRAP` to use servers that already run.

Tests are hermetic: at start-up the plugin removes every ambient `SOUS_*` variable (a shell prepared for
`make up` exports secrets and `SOUS_ENV=production`), keeping only those that configure the test
infrastructure itself (`SOUS_TEST_*`, `KEPT_VARIABLES`). Subprocesses started by tests inherit the cleaned
environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from sous_service.db import create_database as create_server_database

# Not service settings: where the Apache Kafka jars are cached, and how hard schemathesis tries.
KEPT_VARIABLES = frozenset({"SOUS_KAFKA_CACHE", "SOUS_SCHEMATHESIS_EXAMPLES"})


def is_ambient_setting(name: str) -> bool:
    """A `SOUS_*` variable that would configure the code under test rather than the test infrastructure."""
    return name.startswith("SOUS_") and not name.startswith("SOUS_TEST_") and name not in KEPT_VARIABLES


def remove_ambient_settings(environ: MutableMapping[str, str]) -> list[str]:
    removed = sorted(name for name in environ if is_ambient_setting(name))
    for name in removed:
        del environ[name]
    return removed


def pytest_configure(config: pytest.Config) -> None:
    # Runs before any test module is imported, so module-level reads see the cleaned environment too.
    remove_ambient_settings(os.environ)


class RestartableBroker(Protocol):
    @property
    def bootstrap(self) -> str: ...

    def restart(self) -> None: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...


@dataclass
class Infrastructure:
    database_url: str
    kafka_bootstrap: str
    broker_kind: str
    broker: RestartableBroker | None

    @property
    def durable_broker(self) -> bool:
        return self.broker_kind == "kafka"


def _start_postgres(root: Path) -> tuple[str, object]:
    from sous_local.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(root / "postgres", durable=False)
    server.start()
    return server.url, server


def _start_broker(root: Path, kind: str) -> RestartableBroker:
    if kind == "kafka":
        from sous_local.kafka_lane import ApacheKafka

        kafka = ApacheKafka(root / "kafka")
        kafka.start()
        return kafka
    from sous_local.broker import EmbeddedBroker

    broker = EmbeddedBroker(root / "broker")
    broker.start()
    return broker


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    root = Path(tempfile.mkdtemp(prefix="sous-test-"))
    kind = os.environ.get("SOUS_TEST_BROKER", "embedded")
    stoppers = []
    database_url = os.environ.get("SOUS_TEST_DATABASE_URL", "")
    if not database_url:
        database_url, pg = _start_postgres(root)
        stoppers.append(pg)
    bootstrap = os.environ.get("SOUS_TEST_KAFKA_BOOTSTRAP", "")
    broker: RestartableBroker | None = None
    if not bootstrap:
        broker = _start_broker(root, kind)
        stoppers.append(broker)
        bootstrap = broker.bootstrap
    try:
        yield Infrastructure(database_url, bootstrap, kind, broker)
    finally:
        for thing in reversed(stoppers):
            thing.stop()  # type: ignore[attr-defined]
        shutil.rmtree(root, ignore_errors=True)


async def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the test server; returns its SQLAlchemy URL."""
    await create_server_database(server_url, name)
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
async def fresh_database(infra: Infrastructure) -> AsyncIterator[str]:
    """A new empty database on the test server; yields its SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield await create_database(infra.database_url, name)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 60.0, what: str = "") -> Any:
    """Poll until `check()` returns something truthy and return it (a condition, never a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@asynccontextmanager
async def statements_sent(engine: AsyncEngine) -> AsyncIterator[list[tuple[str, tuple[Any, ...]]]]:
    """Every statement sent on the connections `engine` hands out while inside, as (SQL with its whitespace
    collapsed, parameters): those SQLAlchemy executes, and those sent to the driver connection directly
    (sous_events.driver), BEGIN included. Connections checked out before entering are not watched."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    watched: list[Any] = []

    def through_engine(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((" ".join(statement.split()), tuple(parameters or ())))

    def to_driver(query: Any) -> None:
        sent.append((" ".join(query.query.split()), tuple(query.args or ())))

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(to_driver)
        watched.append(driver)

    event.listen(engine.sync_engine, "before_cursor_execute", through_engine)
    event.listen(engine.sync_engine, "checkout", checkout)
    try:
        yield sent
    finally:
        # The driver hands each logged query to its callbacks on the loop's next turn.
        await asyncio.sleep(0)
        event.remove(engine.sync_engine, "checkout", checkout)
        event.remove(engine.sync_engine, "before_cursor_execute", through_engine)
        for driver in watched:
            driver.remove_query_logger(to_driver)


async def terminate_backend(database_url: str, pid: int) -> None:
    """End one PostgreSQL backend from a connection of its own: what a server restart or a proxy cut does to
    the one connection whose backend it was."""
    admin = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()

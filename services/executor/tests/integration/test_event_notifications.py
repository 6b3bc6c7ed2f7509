"""Live-event streams are woken by NOTIFY from the event store trigger, not by polling."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
import pytest
from executor_harness import ModelServer, executor_settings
from sqlalchemy import insert

from sous_events.outbox import asyncpg_dsn
from sous_events.tables import event_store
from sous_executor.adapters.event_notifications import CHANNEL, EventNotifications
from sous_executor.bootstrap import MIGRATIONS_DIR
from sous_local.testing import Infrastructure, unique
from sous_service.db import create_engine
from sous_service.migrate import upgrade_async

pytestmark = pytest.mark.integration


async def _until(check, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _row(aggregate_id: str, version: int) -> dict[str, object]:
    return {
        "event_id": unique("ev"),
        "event_type": "StepStarted",
        "schema_version": 1,
        "workspace_id": "ws",
        "aggregate_type": "Execution",
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "occurred_at": datetime.now(UTC),
        "envelope": {},
    }


async def test_a_committed_append_wakes_exactly_its_streams(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server)
    await upgrade_async(settings, MIGRATIONS_DIR)
    # No fallback poll to speak of: only a notification can wake a waiter within the test's deadline.
    hub = EventNotifications(settings.service_database_url, fallback_poll_s=3600)
    engine = create_engine(settings)
    await hub.start()
    try:
        await _until(lambda: hub.listening)
        mine, other = unique("exec"), unique("exec")
        with hub.subscribe("Execution", mine) as wake, hub.subscribe("Execution", other) as untouched:
            wake.woken.clear()
            untouched.woken.clear()
            waiter = asyncio.create_task(hub.wait(wake, timeout_s=3600))
            async with engine.begin() as conn:
                await conn.execute(insert(event_store).values([_row(mine, 1), _row(mine, 2)]))
            assert await asyncio.wait_for(waiter, 60) is True
            assert not untouched.woken.is_set()
            # The notification says the stream's version after the append: nothing handed over covers it.
            assert wake.announced == 2 and wake.take(0) == ([], True)
            # Rolled back: nothing happened, nobody is woken. A later committed append still is.
            wake.woken.clear()
            async with engine.connect() as conn:
                transaction = await conn.begin()
                await conn.execute(insert(event_store).values(**_row(mine, 3)))
                await transaction.rollback()
            async with engine.begin() as conn:
                await conn.execute(insert(event_store).values(**_row(other, 1)))
            await asyncio.wait_for(untouched.woken.wait(), 60)
            assert not wake.woken.is_set()
            assert untouched.announced == 1
        assert hub.subscriptions == 0
    finally:
        await hub.stop()
        await engine.dispose()


async def test_only_the_versions_channel_is_notified(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    # 0009 also sent '<type>:<id>' on the old channel for the release before it; 0011 stopped that. Both NOTIFYs
    # of one commit arrive together, the old one first: once the new one is here, the old one would be too.
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server)
    await upgrade_async(settings, MIGRATIONS_DIR)
    listener = await asyncpg.connect(asyncpg_dsn(settings.service_database_url))
    engine = create_engine(settings)
    old: asyncio.Queue[str] = asyncio.Queue()
    new: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener("sous_events_appended", lambda *args: old.put_nowait(args[-1]))
        await listener.add_listener(CHANNEL, lambda *args: new.put_nowait(args[-1]))
        mine = unique("exec")
        async with engine.begin() as conn:
            await conn.execute(insert(event_store).values([_row(mine, 1), _row(mine, 2)]))
        assert await asyncio.wait_for(new.get(), 60) == f"Execution:{mine}:2"
        assert old.empty()
    finally:
        await listener.close()
        await engine.dispose()

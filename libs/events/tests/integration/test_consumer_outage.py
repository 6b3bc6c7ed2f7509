"""A database outage stalls the consumer; it never dead-letters good events or commits past them."""

import asyncio
import time
import uuid

import pytest
from sqlalchemy.engine import make_url

from sous_events.dlq_ops import list_dead_letters
from sous_events.outbox import OutboxRelay
from sous_events.topics import QUALITY
from sous_local.faultproxy import FaultProxy
from sous_local.pipeline import consumer_runner, produce, stats

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.fault]

AGGREGATES = 20
PER_AGGREGATE = 50  # 1,000 events
OUTAGE_S = 20.0


async def test_postgres_unreachable_for_twenty_seconds_mid_stream_loses_and_dead_letters_nothing(
    fresh_database, engine, sessions, kafka, workspace, infra
):
    url = make_url(fresh_database)
    proxy = await FaultProxy(url.host or "127.0.0.1", int(url.port or 5432)).start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    stalls: list[int] = []
    # Few attempts and short backoff: the old runner dead-lettered within a second of the outage.
    runner = consumer_runner(
        through_proxy,
        infra.kafka_bootstrap,
        consumer,
        workspace,
        max_attempts=3,
        backoff_s=0.05,
        max_backoff_s=1.0,
        on_stall=lambda name, tp, attempts, error: stalls.append(attempts),
    )
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)
    relay.start()
    runner.start()
    try:
        # Half the stream before the outage, half during it: the consumer has work while the database is away
        # however fast the first half was applied.
        half = PER_AGGREGATE // 2
        first = await produce(sessions, workspace, aggregates=AGGREGATES, per_aggregate=half, per_transaction=5)

        async def some_applied() -> bool:
            return (await stats(engine, consumer)).distinct >= 200

        await eventually(some_applied, what="200 events applied before the outage")
        proxy.cut()
        cut_at = time.monotonic()
        producing = asyncio.create_task(
            produce(
                sessions,
                workspace,
                aggregates=AGGREGATES,
                per_aggregate=PER_AGGREGATE - half,
                per_transaction=5,
                start_version=half + 1,
            )
        )

        async def outage_held_and_surfaced() -> bool:
            return bool(runner.stalled) and time.monotonic() - cut_at >= OUTAGE_S

        await eventually(outage_held_and_surfaced, timeout_s=OUTAGE_S + 60, what="the stall during the outage")
        during = (await stats(engine, consumer)).distinct
        proxy.restore()
        assert first + await producing == AGGREGATES * PER_AGGREGATE

        async def all_applied() -> bool:
            return (await stats(engine, consumer)).distinct == AGGREGATES * PER_AGGREGATE

        await eventually(all_applied, timeout_s=180, what="all 1,000 events applied after the outage")
        final = await stats(engine, consumer)
        assert during < AGGREGATES * PER_AGGREGATE  # the outage did cut in mid-stream
        assert final.applied == final.distinct == AGGREGATES * PER_AGGREGATE  # each applied once
        assert final.violations == 0  # in order per aggregate
        # Nothing of this stream reached the DLQ (other tests' records on the shared topic may have).
        assert [
            d.id for d in await list_dead_letters(kafka, topic=QUALITY) if (d.key or b"").startswith(workspace.encode())
        ] == []
        assert runner.transient_failures > 0 and stalls  # the stall was surfaced
        assert not runner.stalled  # and cleared once the database was back
    finally:
        await runner.stop()
        await relay.stop()
        await proxy.stop()

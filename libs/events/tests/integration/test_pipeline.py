"""outbox -> broker -> inbox under faults: every event applied exactly once, per-aggregate order kept."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from sous_events.outbox import OutboxRelay, pending_count
from sous_events.replay import republish_event_store
from sous_events.store import EventStore
from sous_events.topics import QUALITY, dlq_topic
from sous_local.pipeline import consumer_runner, pipeline_event, produce, stats

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.fault]

AGGREGATES = 50
PER_AGGREGATE = 200  # 10,000 events


def _relay(fresh_database, kafka):
    return OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)


async def test_ten_thousand_events_survive_a_sigkilled_consumer(
    fresh_database, engine, sessions, kafka, workspace, consumer_processes, infra
):
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    relay = _relay(fresh_database, kafka)
    relay.start()
    first = consumer_processes(fresh_database, infra.kafka_bootstrap, consumer, workspace)
    first.start()
    producing = asyncio.create_task(produce(sessions, workspace, aggregates=AGGREGATES, per_aggregate=PER_AGGREGATE))

    async def some_applied() -> bool:
        return (await stats(engine, consumer)).distinct >= 2000

    await eventually(some_applied, what="the first consumer to apply 2,000 events")
    first.kill()  # SIGKILL mid-stream: its uncommitted tail will be delivered again
    killed_at = (await stats(engine, consumer)).distinct
    second = consumer_processes(fresh_database, infra.kafka_bootstrap, consumer, workspace)
    second.start()
    assert await producing == AGGREGATES * PER_AGGREGATE

    async def all_applied() -> bool:
        return (await stats(engine, consumer)).distinct == AGGREGATES * PER_AGGREGATE

    await eventually(all_applied, timeout_s=240, what="all 10,000 events to be applied")
    await relay.stop()
    final = await stats(engine, consumer)
    assert killed_at < AGGREGATES * PER_AGGREGATE
    assert final.applied == final.distinct == AGGREGATES * PER_AGGREGATE  # exactly once, by event id
    assert final.violations == 0  # per-aggregate order preserved
    assert await pending_count(fresh_database) == 0  # outbox drained


@pytest.mark.kafka_only
async def test_ten_thousand_events_survive_a_broker_restart(
    fresh_database, engine, sessions, kafka, workspace, consumer_processes, infra
):
    if not infra.durable_broker or infra.broker is None:
        pytest.skip("the embedded broker keeps nothing across a restart; covered by the replay test")
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    relay = _relay(fresh_database, kafka)
    relay.start()
    proc = consumer_processes(fresh_database, infra.kafka_bootstrap, consumer, workspace)
    proc.start()
    producing = asyncio.create_task(produce(sessions, workspace, aggregates=AGGREGATES, per_aggregate=PER_AGGREGATE))

    async def some_applied() -> bool:
        return (await stats(engine, consumer)).distinct >= 2000

    await eventually(some_applied, what="2,000 events applied before the restart")
    await asyncio.to_thread(infra.broker.restart)
    assert await producing == AGGREGATES * PER_AGGREGATE

    async def all_applied() -> bool:
        return (await stats(engine, consumer)).distinct == AGGREGATES * PER_AGGREGATE

    await eventually(all_applied, timeout_s=300, what="all events applied after the broker restart")
    await relay.stop()
    final = await stats(engine, consumer)
    assert final.applied == final.distinct == AGGREGATES * PER_AGGREGATE
    assert final.violations == 0
    assert await pending_count(fresh_database) == 0


async def test_a_poison_event_goes_to_the_dlq_and_the_partition_moves_on(
    fresh_database, engine, sessions, kafka, workspace, infra
):
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    store = EventStore()
    aggregate = f"{workspace}-poisoned"
    async with sessions() as s, s.begin():
        await store.append(s, [pipeline_event(workspace, aggregate, 1)], expected_version=0)
        await store.append(s, [pipeline_event(workspace, aggregate, 2, poison=True)], expected_version=1)
        await store.append(s, [pipeline_event(workspace, aggregate, 3)], expected_version=2)
        await store.append(s, [pipeline_event(workspace, aggregate, 4)], expected_version=3)
    poison_id = (await _load_ids(sessions, aggregate))[1]
    relay = _relay(fresh_database, kafka)
    relay.start()
    dlq = AIOKafkaConsumer(
        dlq_topic(QUALITY),
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=f"dlq-{consumer}",
        auto_offset_reset="earliest",
    )
    await dlq.start()
    runner = consumer_runner(fresh_database, infra.kafka_bootstrap, consumer, workspace, max_attempts=3, backoff_s=0.01)
    runner.start()
    try:

        async def rest_applied() -> bool:
            return (await stats(engine, consumer)).distinct == 3

        await eventually(rest_applied, what="the events after the poison one")
        found = None
        async with asyncio.timeout(60):
            while found is None:
                batch = await dlq.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        headers = dict(record.headers)
                        if headers.get("event_id", b"").decode() == poison_id:
                            found = headers
        assert found["dlq_consumer"].decode() == consumer
        assert found["dlq_attempts"] == b"3"
        assert b"poison event" in found["dlq_error"]
        assert runner.dead_lettered == 1
    finally:
        await runner.stop()
        await relay.stop()
        await dlq.stop()


async def _load_ids(sessions, aggregate):
    async with sessions() as s:
        return [e.event_id for e in await EventStore().load(s, "AgentMetrics", aggregate)]


async def test_replay_after_broker_loss_applies_nothing_twice_and_lets_a_laggard_catch_up(
    fresh_database, engine, sessions, kafka, workspace, infra
):
    if infra.broker is None:
        pytest.skip("needs a broker this test session started")
    if infra.durable_broker:
        pytest.skip("wiping the durable Kafka log is not done in tests; the embedded lane covers it")
    early = f"early-{uuid.uuid4().hex[:8]}"
    laggard = f"late-{uuid.uuid4().hex[:8]}"
    relay = _relay(fresh_database, kafka)
    relay.start()
    first_runner = consumer_runner(fresh_database, infra.kafka_bootstrap, early, workspace, backoff_s=0.01)
    first_runner.start()
    await produce(sessions, workspace, aggregates=10, per_aggregate=10)

    async def early_done() -> bool:
        return (await stats(engine, early)).distinct == 100

    await eventually(early_done, what="the early consumer to apply 100 events")
    await first_runner.stop()
    await relay.stop()

    await asyncio.to_thread(infra.broker.restart)  # the embedded broker comes back empty
    await produce(sessions, workspace, aggregates=10, per_aggregate=5, start_version=11)  # recorded, not yet sent
    republished = await republish_event_store(sessions, kafka)
    assert republished >= 150

    relay = _relay(fresh_database, kafka)
    relay.start()  # sends the 50 unsent outbox rows too: duplicates of the replay, absorbed by the inbox
    runners = [
        consumer_runner(fresh_database, infra.kafka_bootstrap, early, workspace, backoff_s=0.01),
        consumer_runner(fresh_database, infra.kafka_bootstrap, laggard, workspace, backoff_s=0.01),
    ]
    for runner in runners:
        runner.start()
    try:

        async def both_done() -> bool:
            return (await stats(engine, early)).distinct == 150 and (await stats(engine, laggard)).distinct == 150

        await eventually(both_done, what="both consumers to hold all 150 events")
        await asyncio.sleep(1.0)  # let any straggling duplicate arrive before counting
        for name in (early, laggard):
            final = await stats(engine, name)
            assert final.applied == final.distinct == 150
            assert final.violations == 0
        assert runners[0].duplicates >= 100  # the early consumer saw its 100 again and skipped them
    finally:
        for runner in runners:
            await runner.stop()
        await relay.stop()

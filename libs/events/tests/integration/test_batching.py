"""Batches through the pipeline: a relay pass sends many rows at once; a consumer batch applies each event once."""

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import text

from sous_events.codec import decode, encode
from sous_events.consumer import ConsumerRunner
from sous_events.kafka import make_producer
from sous_events.outbox import OutboxRelay, pending_count
from sous_events.store import EventStore
from sous_events.topics import QUALITY
from sous_local.pipeline import make_handler, pipeline_event, stats

from .conftest import eventually

pytestmark = pytest.mark.integration

AGGREGATES = 12
VERSIONS = 100


async def test_one_relay_pass_sends_a_large_batch_with_each_aggregate_in_order(
    fresh_database, sessions, kafka, workspace, infra
):
    store = EventStore()
    aggregates = [f"{workspace}-batch-{i:02d}" for i in range(AGGREGATES)]
    async with sessions() as s, s.begin():
        for aggregate in aggregates:
            events = [pipeline_event(workspace, aggregate, v) for v in range(1, VERSIONS + 1)]
            await store.append(s, events, expected_version=0)
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)
    conn = await relay._connect()
    reader = AIOKafkaConsumer(
        QUALITY, bootstrap_servers=infra.kafka_bootstrap, group_id=f"g-{workspace}", auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        assert await relay._publish_batch(conn) == AGGREGATES * VERSIONS  # one pass, one await of the batch
        # The acknowledged rows are marked sent by the next pass's fetch, which finds nothing more to send.
        assert await relay._publish_batch(conn) == 0
        assert await pending_count(fresh_database) == 0
        assert relay.published == AGGREGATES * VERSIONS

        seen: dict[str, list[int]] = {a: [] for a in aggregates}

        async def all_read() -> bool:
            for records in (await reader.getmany(timeout_ms=500)).values():
                for record in records:
                    key = record.key.decode()
                    if key in seen:
                        seen[key].append(decode(record.value).aggregate_version)
            return sum(len(v) for v in seen.values()) >= AGGREGATES * VERSIONS

        await eventually(all_read, what="the relayed events on the topic")
        assert all(versions == list(range(1, VERSIONS + 1)) for versions in seen.values())
    finally:
        await reader.stop()
        await relay._close_producer()
        await conn.close()


def _record(offset: int, value: bytes) -> ConsumerRecord:  # type: ignore[type-arg]
    return ConsumerRecord(QUALITY, 0, offset, 0, 0, b"k", value, None, 1, len(value), [])


async def _transactions(engine, consumer: str) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(DISTINCT xmin::text) FROM pipeline_applied WHERE consumer = :c"), {"c": consumer}
                )
            ).scalar_one()
        )


async def test_a_batch_failing_in_the_middle_applies_each_event_once_and_the_rest_in_batches(
    engine, sessions, kafka, workspace
):
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    aggregate = f"{workspace}-mixed"
    events = [pipeline_event(workspace, aggregate, v, poison=v == 10) for v in range(1, 17)]
    records = [_record(i, encode(e)) for i, e in enumerate(events)]
    records.append(_record(len(records), encode(events[2])))  # a copy delivered again within the batch
    runner = ConsumerRunner(
        name=consumer,
        topics=[QUALITY],
        handler=make_handler(consumer, workspace),
        sessions=sessions,
        kafka=kafka,
        max_attempts=1,
    )
    producer = make_producer(kafka)
    await producer.start()
    try:
        tp = TopicPartition(QUALITY, 0)
        await runner._process_partition(tp, records, producer)
        first = await stats(engine, consumer)
        assert first.applied == first.distinct == 15  # all but the poison event, each once
        assert first.violations == 0
        assert runner.dead_lettered == 1
        assert runner._pending[tp] == len(records)
        # Split in halves around the poison event, the others went in a few transactions, not one each.
        assert await _transactions(engine, consumer) < 15

        # Redelivered (a crash before the offset commit): nothing is applied twice.
        redelivered = [r for i, r in enumerate(records) if i != 9]  # the poison event (version 10) aside
        await runner._process_partition(tp, redelivered, producer)
        again = await stats(engine, consumer)
        assert again.applied == again.distinct == 15
    finally:
        await producer.stop()


async def test_the_relay_walks_the_unsent_index_in_order_whatever_the_statistics_say(
    fresh_database, sessions, kafka, workspace
):
    # A fresh outbox has no statistics, so the planner takes the unsent rows for few and would scan them all
    # and sort them on every pass; the relay's session makes its fetch stop at the batch size.
    from sous_events.outbox import _NEXT_ROWS

    store = EventStore()
    async with sessions() as s, s.begin():
        await store.append_streams(
            s,
            [
                ([pipeline_event(workspace, f"{workspace}-plan-{i:03d}", v) for v in range(1, 21)], 0)
                for i in range(150)
            ],
        )
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)
    conn = await relay._connect()
    try:
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                "EXPLAIN " + _NEXT_ROWS.replace("$1", "100").replace("$2", "'{}'").replace("$3", "'{}'")
            )
        )
    finally:
        await conn.close()
    assert "Index Scan using ix_outbox_unsent" in plan, plan
    assert "Sort" not in plan, plan


class _CountingConnection(asyncpg.Connection):  # type: ignore[misc]
    fetches = 0

    async def fetch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        type(self).fetches += 1
        return await super().fetch(*args, **kwargs)


async def test_a_pass_fetches_the_next_rows_while_its_own_are_acknowledged(fresh_database, sessions, kafka, workspace):
    store = EventStore()
    aggregates = [f"{workspace}-ahead-{i}" for i in range(3)]
    async with sessions() as s, s.begin():
        await store.append_streams(
            s, [([pipeline_event(workspace, a, v) for v in range(1, 101)], 0) for a in aggregates]
        )
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka, batch_size=100)
    conn = await asyncpg.connect(relay.dsn, connection_class=_CountingConnection)
    try:
        assert await relay._publish_batch(conn) == 100
        assert _CountingConnection.fetches == 2  # its own rows, then the next pass's during the send
        assert await relay._publish_batch(conn) == 100
        assert await relay._publish_batch(conn) == 100
        assert _CountingConnection.fetches == 4  # the second and third pass had their rows already
        assert await relay._publish_batch(conn) == 0  # marks the last pass's rows; nothing more to send
        assert await pending_count(fresh_database) == 0
        assert relay.published == 300
        rows = await conn.fetch("SELECT key, count(*) FROM outbox WHERE sent_at IS NOT NULL GROUP BY key")
        assert sorted((r["key"], r["count"]) for r in rows) == [(a, 100) for a in aggregates]
    finally:
        await relay._close_producer()
        await conn.close()


async def test_a_relay_keeping_no_delivery_log_deletes_each_row_once_acknowledged(
    fresh_database, sessions, kafka, workspace, infra
):
    store = EventStore()
    aggregates = [f"{workspace}-nolog-{i}" for i in range(3)]
    async with sessions() as s, s.begin():
        await store.append_streams(
            s, [([pipeline_event(workspace, a, v) for v in range(1, 51)], 0) for a in aggregates]
        )
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka, keep_sent_s=0)
    conn = await relay._connect()
    reader = AIOKafkaConsumer(
        QUALITY, bootstrap_servers=infra.kafka_bootstrap, group_id=f"g-{workspace}", auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        assert await relay._publish_batch(conn) == 150
        assert await relay._publish_batch(conn) == 0  # its fetch deletes the acknowledged rows
        assert relay.published == 150
        # No row is left, and none was rewritten to mark it sent: one dead tuple per event, not two row versions.
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        await conn.execute("SELECT pg_stat_force_next_flush()")  # this connection's counts, flushed once idle
        changed = await conn.fetchrow(
            "SELECT pg_stat_get_tuples_updated('outbox'::regclass) AS updated, "
            "pg_stat_get_tuples_deleted('outbox'::regclass) AS deleted"
        )
        assert (changed["updated"], changed["deleted"]) == (0, 150)

        read: dict[str, list[int]] = {a: [] for a in aggregates}

        async def all_read() -> bool:
            for records in (await reader.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key.decode() in read:
                        read[record.key.decode()].append(decode(record.value).aggregate_version)
            return sum(len(v) for v in read.values()) >= 150

        await eventually(all_read, what="the relayed events on the topic")
        assert all(versions == list(range(1, 51)) for versions in read.values())
    finally:
        await reader.stop()
        await relay._close_producer()
        await conn.close()


async def test_a_relay_keeping_no_delivery_log_vacuums_the_outbox_as_it_deletes(
    fresh_database, sessions, kafka, workspace
):
    # Every deleted row leaves a dead entry in the unsent index that each fetch steps over until the table is
    # vacuumed; the leader vacuums it every `vacuum_every_rows` rows instead of waiting for autovacuum.
    store = EventStore()
    async with sessions() as s, s.begin():
        await store.append_streams(
            s, [([pipeline_event(workspace, f"{workspace}-vacuum-{i}", v) for v in range(1, 101)], 0) for i in range(3)]
        )
    relay = OutboxRelay(
        name=f"relay-{uuid.uuid4().hex[:8]}",
        database_url=fresh_database,
        kafka=kafka,
        keep_sent_s=0,
        batch_size=100,
        vacuum_every_rows=100,
    )
    conn = await asyncpg.connect(relay.dsn)
    relay.start()
    try:

        async def vacuumed() -> bool:
            counts = await conn.fetchrow(
                "SELECT pg_stat_get_vacuum_count('outbox'::regclass) AS vacuums, (SELECT count(*) FROM outbox) AS left"
            )
            return counts["left"] == 0 and counts["vacuums"] >= 2

        await eventually(vacuumed, what="the sent rows deleted and the outbox vacuumed")
        assert relay.published == 300 and relay.vacuums >= 2
    finally:
        await relay.stop()
        await conn.close()
    # A relay that keeps its delivery log leaves its live rows to the periodic trim and autovacuum.
    assert OutboxRelay(name="kept", database_url=fresh_database, kafka=kafka, keep_sent_s=60).vacuum_every_rows == 0

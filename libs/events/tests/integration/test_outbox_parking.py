"""An event the broker refuses is parked; it holds back only its own key, and can be re-sent or discarded."""

import uuid
from dataclasses import replace

import pytest
from sqlalchemy import text

from sous_events.codec import encode
from sous_events.events import AgentMetricsUpdated
from sous_events.outbox import OutboxRelay, pending_count
from sous_events.parking import discard, parked_count, parked_row, parked_rows, resend
from sous_events.registry import make_event
from sous_events.store import DEFAULT_MAX_EVENT_BYTES, EventStore, EventTooLarge
from sous_local.pipeline import consumer_runner, pipeline_event

from .conftest import eventually

pytestmark = pytest.mark.integration


def _big_event(workspace: str, aggregate: str, version: int, size: int):  # type: ignore[no-untyped-def]
    return make_event(
        AgentMetricsUpdated(agent_id=aggregate, metrics={"n": version, "blob": "x" * size}),
        producer="pipeline",
        workspace_id=workspace,
        aggregate_id=aggregate,
        aggregate_version=version,
    )


async def _applied_versions(engine, consumer: str, aggregate: str) -> list[int]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT aggregate_version FROM pipeline_applied WHERE consumer = :c AND aggregate_id = :a ORDER BY seq"
            ),
            {"c": consumer, "a": aggregate},
        )
        return [int(v) for v in result.scalars()]


async def _append_others(sessions, workspace: str, aggregates: list[str], versions: range) -> None:  # type: ignore[no-untyped-def]
    store = EventStore()
    for version in versions:
        async with sessions() as s, s.begin():
            for aggregate in aggregates:
                await store.append(s, [pipeline_event(workspace, aggregate, version)], expected_version=version - 1)


async def test_the_store_refuses_an_event_over_the_limit_and_writes_nothing(sessions, workspace):
    store = EventStore()
    async with sessions() as s, s.begin():
        with pytest.raises(EventTooLarge) as refused:
            await store.append(s, [_big_event(workspace, "huge", 1, DEFAULT_MAX_EVENT_BYTES)], expected_version=0)
        # The transaction is still usable: the refusal happened before anything was written.
        await store.append(s, [pipeline_event(workspace, "huge", 1)], expected_version=0)
    assert refused.value.limit == DEFAULT_MAX_EVENT_BYTES
    assert refused.value.size > DEFAULT_MAX_EVENT_BYTES
    assert "event limit" in str(refused.value)
    async with sessions() as s:
        assert [e.payload["metrics"]["n"] for e in await store.load(s, "AgentMetrics", "huge")] == [1]
        assert (await s.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 1


async def test_an_oversized_row_is_parked_and_other_aggregates_keep_flowing(
    fresh_database, engine, sessions, kafka, workspace, infra
):
    big, others = f"{workspace}-big", [f"{workspace}-other-{i}" for i in range(5)]
    # Written as if before the store had a limit: bigger than the broker's 1 MiB.
    async with sessions() as s, s.begin():
        store = EventStore(max_event_bytes=4 * 1024 * 1024)
        await store.append(s, [_big_event(workspace, big, 1, 1536 * 1024)], expected_version=0)
        await store.append(s, [pipeline_event(workspace, big, 2)], expected_version=1)
    await _append_others(sessions, workspace, others, range(1, 4))
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)
    runner = consumer_runner(fresh_database, infra.kafka_bootstrap, consumer, workspace, backoff_s=0.01)
    relay.start()
    runner.start()
    try:

        async def others_applied() -> bool:
            return all([await _applied_versions(engine, consumer, a) == [1, 2, 3] for a in others])

        await eventually(others_applied, what="the other aggregates' events behind the oversized one")
        # More events keep flowing after the parking, not only those of the first batch.
        await _append_others(sessions, workspace, others, range(4, 6))

        async def later_applied() -> bool:
            return all([await _applied_versions(engine, consumer, a) == [1, 2, 3, 4, 5] for a in others])

        await eventually(later_applied, what="events appended after the parking")
        parked = await parked_rows(engine)
        assert [(p.key, p.held_back, p.attempts) for p in parked] == [(big, 1, 1)]
        assert "MessageSizeTooLargeError" in parked[0].last_error
        assert parked[0].size > 1024 * 1024
        assert await parked_count(engine) == 1
        assert relay.parked == 1
        assert await _applied_versions(engine, consumer, big) == []  # v2 waits behind the parked v1

        # The operator gives up on the undeliverable event: its key's later events flow again.
        assert await discard(engine, parked[0].id)
        assert not await discard(engine, parked[0].id)  # only a parked, unsent row can be discarded

        async def big_released() -> bool:
            return await _applied_versions(engine, consumer, big) == [2]

        await eventually(big_released, what="the held-back event after the discard")
        assert await parked_count(engine) == 0
        assert await pending_count(fresh_database) == 0
    finally:
        await runner.stop()
        await relay.stop()


async def test_a_parked_row_is_re_sent_in_order_once_the_broker_accepts_it(
    fresh_database, engine, sessions, kafka, workspace, infra
):
    big, other = f"{workspace}-big", f"{workspace}-other"
    async with sessions() as s, s.begin():
        store = EventStore()
        await store.append(s, [_big_event(workspace, big, 1, 100 * 1024)], expected_version=0)
        await store.append(s, [pipeline_event(workspace, big, 2)], expected_version=1)
        await store.append(s, [pipeline_event(workspace, other, 1)], expected_version=0)
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    runner = consumer_runner(fresh_database, infra.kafka_bootstrap, consumer, workspace, backoff_s=0.01)
    runner.start()
    # A relay whose producer allows less than this event: it parks it, as a broker with a small limit would.
    strict = OutboxRelay(
        name=f"relay-{uuid.uuid4().hex[:8]}",
        database_url=fresh_database,
        kafka=replace(kafka, max_message_bytes=64 * 1024),
    )
    strict.start()
    try:

        async def parked_and_other_applied() -> bool:
            return await parked_count(engine) == 1 and await _applied_versions(engine, consumer, other) == [1]

        await eventually(parked_and_other_applied, what="the row parked and the other aggregate applied")
        await strict.stop()
        row = (await parked_rows(engine))[0]
        assert await parked_row(engine, row.id) == row
        assert await parked_row(engine, row.id + 1000) is None

        # The limit is raised (here: a relay with the default limit), then the operator re-sends.
        relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)
        relay.start()
        try:
            assert await resend(engine, [row.id]) == [row.id]
            assert await resend(engine, [row.id]) == []  # already released

            async def big_applied() -> bool:
                return await _applied_versions(engine, consumer, big) == [1, 2]

            await eventually(big_applied, what="the re-sent event and the one held behind it, in order")
            assert await parked_count(engine) == 0
            assert await pending_count(fresh_database) == 0
        finally:
            await relay.stop()
    finally:
        await strict.stop()
        await runner.stop()


async def test_the_relay_brings_an_outbox_from_before_parking_up_to_date(
    fresh_database, engine, sessions, kafka, workspace
):
    # A well-formed event (other tests' consumers read this topic too) of a workspace nobody handles.
    value = encode(pipeline_event(workspace, f"{workspace}-old", 1))
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_outbox_parked"))
        await conn.execute(
            text("ALTER TABLE outbox DROP COLUMN parked_at, DROP COLUMN last_error, DROP COLUMN attempts")
        )
        await conn.execute(
            text(
                "INSERT INTO outbox (event_id, topic, key, value, headers) "
                "VALUES ('old-1', 'sous.quality.v1', 'old', :v, '[]'::jsonb)"
            ),
            {"v": value},
        )
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)
    relay.start()
    try:

        async def sent() -> bool:
            return await pending_count(fresh_database) == 0

        await eventually(sent, what="the old row published after the upgrade")
        assert await parked_count(engine) == 0
    finally:
        await relay.stop()

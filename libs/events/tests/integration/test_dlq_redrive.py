"""Dead letters on the real broker: listed with their reason, shown whole, re-driven in order, idempotently."""

import uuid

import pytest
from sqlalchemy import text

from sous_events.consumer import ConsumerRunner
from sous_events.dlq_ops import UnknownDeadLetter, get_dead_letter, list_dead_letters, parse_id, redrive
from sous_events.kafka import KafkaConfig
from sous_events.outbox import OutboxRelay
from sous_events.store import EventStore
from sous_events.topics import QUALITY, dlq_topic
from sous_local.pipeline import TOPIC, make_handler, pipeline_event

from .conftest import eventually

pytestmark = pytest.mark.integration


async def _versions(engine, consumer: str, aggregate: str) -> list[int]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT aggregate_version FROM pipeline_applied WHERE consumer = :c AND aggregate_id = :a ORDER BY seq"
            ),
            {"c": consumer, "a": aggregate},
        )
        return [int(v) for v in result.scalars()]


async def test_dead_letters_are_listed_shown_and_re_driven_in_order(
    fresh_database, engine, sessions, kafka: KafkaConfig, workspace
):
    broken, healthy = f"{workspace}-broken", f"{workspace}-healthy"
    consumer = f"c-{uuid.uuid4().hex[:8]}"
    bug = {"on": True}
    inner = make_handler(consumer, workspace)

    async def handler(session, envelope):  # type: ignore[no-untyped-def]
        if bug["on"] and envelope.aggregate_id == broken:
            raise RuntimeError(f"handler bug on {envelope.aggregate_id} v{envelope.aggregate_version}")
        await inner(session, envelope)

    store = EventStore()
    for version in (1, 2, 3):
        async with sessions() as s, s.begin():
            await store.append(s, [pipeline_event(workspace, broken, version)], expected_version=version - 1)
            await store.append(s, [pipeline_event(workspace, healthy, version)], expected_version=version - 1)
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)
    runner = ConsumerRunner(
        name=consumer,
        topics=[TOPIC],
        handler=handler,
        sessions=sessions,
        kafka=kafka,
        event_types={"AgentMetricsUpdated"},
        max_attempts=2,
        backoff_s=0.01,
    )
    relay.start()
    runner.start()
    try:

        async def mine() -> list:  # type: ignore[type-arg]
            return [d for d in await list_dead_letters(kafka, topic=QUALITY) if d.key == broken.encode()]

        async def three_dead_letters() -> bool:
            return len(await mine()) == 3 and await _versions(engine, consumer, healthy) == [1, 2, 3]

        await eventually(three_dead_letters, what="the broken aggregate's events in the DLQ, the other applied")
        letters = await mine()
        summaries = [d.summary() for d in letters]
        assert [s["reason"] for s in summaries] == ["handler"] * 3
        assert [s["attempts"] for s in summaries] == [2, 2, 2]
        assert all(s["topic"] == QUALITY and s["consumer"] == consumer for s in summaries)
        assert all(s["source"].startswith(f"{QUALITY}/") for s in summaries)
        assert [s["error"].rsplit(" ", 1)[1] for s in summaries] == ["v1", "v2", "v3"]
        shown = (await get_dead_letter(kafka, letters[0].id)).detail()
        assert shown["value"]["aggregate_id"] == broken and "RuntimeError" in shown["traceback"]
        assert "dlq_error" not in shown["headers"] and shown["headers"]["event_type"] == "AgentMetricsUpdated"
        with pytest.raises(UnknownDeadLetter):
            await get_dead_letter(kafka, f"{dlq_topic(QUALITY)}:0:999999")
        with pytest.raises(ValueError):
            parse_id("no-such-topic:0:1")

        bug["on"] = False  # the handler is fixed and deployed
        sent = [d for d in await redrive(kafka, topic=QUALITY) if d.key == broken.encode()]
        assert [d.id for d in sent] == [d.id for d in letters]

        async def re_applied() -> bool:
            return await _versions(engine, consumer, broken) == [1, 2, 3]

        await eventually(re_applied, what="the re-driven events applied in their order")
        # Everything was re-driven once: the next "all" has nothing of ours; an explicit id can still be sent.
        assert [d for d in await redrive(kafka, topic=QUALITY) if d.key == broken.encode()] == []
        assert all(d.redriven for d in await mine())
        duplicates = runner.duplicates
        assert [d.id for d in await redrive(kafka, ids=[letters[1].id])] == [letters[1].id]

        async def skipped() -> bool:
            return runner.duplicates > duplicates

        await eventually(skipped, what="the repeated event skipped by the inbox")
        assert await _versions(engine, consumer, broken) == [1, 2, 3]
        assert len(await mine()) == 3  # nothing of ours failed again after the fix
    finally:
        await runner.stop()
        await relay.stop()

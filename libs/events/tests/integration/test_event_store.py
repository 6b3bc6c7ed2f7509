import asyncio

import pytest
from sqlalchemy import text

from sous_events.projection import rebuild_projection
from sous_events.store import ConcurrencyConflict, EventStore
from sous_local.pipeline import pipeline_event

pytestmark = pytest.mark.integration


async def test_two_concurrent_appends_at_the_same_version_one_wins(sessions, workspace):
    store = EventStore()
    async with sessions() as s, s.begin():
        await store.append(s, [pipeline_event(workspace, "a1", 1)], expected_version=0)

    barrier = asyncio.Barrier(2)

    async def append() -> str:
        async with sessions() as s:
            async with s.begin():
                await barrier.wait()
                try:
                    await store.append(s, [pipeline_event(workspace, "a1", 2)], expected_version=1)
                except ConcurrencyConflict:
                    return "conflict"
            return "ok"

    results = sorted(await asyncio.gather(append(), append()))
    assert results == ["conflict", "ok"]
    async with sessions() as s:
        events = await store.load(s, "AgentMetrics", "a1")
        assert [e.aggregate_version for e in events] == [1, 2]
        assert await store.current_version(s, "AgentMetrics", "a1") == 2
        outbox = (await s.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
        assert outbox == 2  # the loser's outbox row rolled back with it


async def test_append_rejects_a_version_gap(sessions, workspace):
    async with sessions() as s, s.begin():
        with pytest.raises(ValueError):
            await EventStore().append(s, [pipeline_event(workspace, "a2", 3)], expected_version=0)


async def test_rebuilt_projection_equals_the_live_one(sessions, workspace):
    store = EventStore()
    async with sessions() as s, s.begin():
        await s.execute(text("CREATE TABLE totals (aggregate_id text PRIMARY KEY, n int, last int)"))

    async def apply(session, envelope):  # the live projection and the rebuild share this
        await session.execute(
            text(
                "INSERT INTO totals VALUES (:a, 1, :v) ON CONFLICT (aggregate_id) "
                "DO UPDATE SET n = totals.n + 1, last = EXCLUDED.last"
            ),
            {"a": envelope.aggregate_id, "v": envelope.payload["metrics"]["n"]},
        )

    for version in range(1, 6):
        for agg in ("p1", "p2", "p3"):
            async with sessions() as s, s.begin():
                event = pipeline_event(workspace, agg, version)
                await store.append(s, [event], expected_version=version - 1)
                await apply(s, event)
    async with sessions() as s:
        live = (await s.execute(text("SELECT * FROM totals ORDER BY 1"))).all()

    async def reset(session):
        await session.execute(text("TRUNCATE totals"))

    count = await rebuild_projection(sessions, reset=reset, apply=apply)
    async with sessions() as s:
        rebuilt = (await s.execute(text("SELECT * FROM totals ORDER BY 1"))).all()
    assert count == 15
    assert rebuilt == live
    assert live == [("p1", 5, 5), ("p2", 5, 5), ("p3", 5, 5)]


async def test_the_relay_trims_rows_sent_long_ago(fresh_database, sessions, kafka, workspace):
    from sous_events.outbox import OutboxRelay, pending_count

    store = EventStore()
    async with sessions() as s, s.begin():
        for version in (1, 2, 3):
            await store.append(s, [pipeline_event(workspace, "trim", version)], expected_version=version - 1)
        await s.execute(
            text(
                "UPDATE outbox SET sent_at = now() - interval '2 hours' WHERE id IN "
                "(SELECT id FROM outbox ORDER BY id LIMIT 2)"
            )
        )
    # purge_every_s=0: trim on every pass, so the test waits on the outcome rather than on the purge clock.
    relay = OutboxRelay(
        name=f"trim-{workspace}", database_url=fresh_database, kafka=kafka, keep_sent_s=3600, purge_every_s=0
    )
    relay.start()
    try:
        # A generous deadline: leader election and the producer's start can be slow on a loaded machine.
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            async with sessions() as s:
                remaining = (await s.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
            if remaining == 1 and await pending_count(fresh_database) == 0:
                break
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await relay.stop()
    assert remaining == 1  # the two old rows are gone; the fresh one was published and kept
    async with sessions() as s:
        assert len(await store.load(s, "AgentMetrics", "trim")) == 3  # the event store keeps everything


async def test_append_streams_writes_several_streams_in_one_statement(sessions, workspace):
    store = EventStore()
    async with sessions() as s, s.begin():
        await store.append(s, [pipeline_event(workspace, "m1", 1)], expected_version=0)
    async with sessions() as s, s.begin():
        await store.append_streams(
            s,
            [
                ([pipeline_event(workspace, "m1", 2), pipeline_event(workspace, "m1", 3)], 1),
                ([pipeline_event(workspace, "m2", 1)], 0),
            ],
        )
    async with sessions() as s:
        assert [e.aggregate_version for e in await store.load(s, "AgentMetrics", "m1")] == [1, 2, 3]
        assert [e.aggregate_version for e in await store.load(s, "AgentMetrics", "m2")] == [1]
        assert (await s.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 4


async def test_a_conflict_on_one_stream_writes_none_and_names_that_stream(sessions, workspace):
    store = EventStore()
    async with sessions() as s, s.begin():
        await store.append(s, [pipeline_event(workspace, "n2", 1)], expected_version=0)
    async with sessions() as s, s.begin():
        with pytest.raises(ConcurrencyConflict) as raised:
            await store.append_streams(
                s,
                [
                    ([pipeline_event(workspace, "n1", 1)], 0),
                    ([pipeline_event(workspace, "n2", 1)], 0),  # stale: n2 is at version 1 already
                ],
            )
        assert raised.value.aggregate_id == "n2"
        # The transaction is still usable after the conflict, and nothing of the refused batch is in it.
        await store.append(s, [pipeline_event(workspace, "n3", 1)], expected_version=0)
    async with sessions() as s:
        assert await store.load(s, "AgentMetrics", "n1") == []
        assert len(await store.load(s, "AgentMetrics", "n3")) == 1
        assert (await s.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 2

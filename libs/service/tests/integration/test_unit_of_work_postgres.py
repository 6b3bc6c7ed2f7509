"""The unit of work on a real PostgreSQL: events, outbox rows and the projection commit together or not at
all, and a writer that lost the race to another is run again on the new state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sous_events.envelope import Envelope
from sous_events.events import AgentMetricsUpdated
from sous_events.store import EventStore
from sous_local.pipeline import prepare
from sous_service.caller import Caller
from sous_service.commands import Command
from sous_service.domain_errors import Conflict, NotFound
from sous_service.unit_of_work import UnitOfWork, UnitOfWorks

pytestmark = pytest.mark.integration

AGGREGATE = "AgentMetrics"


class PublishMetrics(Command):
    agent_id: str
    metrics: dict[str, int]


@pytest.fixture
async def engine(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(fresh_database, pool_size=4)
    await prepare(eng)
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE projected (event_id text PRIMARY KEY, version int NOT NULL)"))
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def project(session: AsyncSession, envelope: Envelope) -> None:
    await session.execute(
        text("INSERT INTO projected VALUES (:id, :v)"), {"id": envelope.event_id, "v": envelope.aggregate_version}
    )


def caller() -> Caller:
    return Caller(workspace_id=f"ws-{uuid.uuid4().hex[:8]}", user_id="u1", correlation_id="corr-1")


async def publish(command: PublishMetrics, uow: UnitOfWork) -> Envelope:
    version = len(await uow.load(AGGREGATE, command.agent_id))
    payload = AgentMetricsUpdated(agent_id=command.agent_id, metrics=command.metrics)
    return await uow.record(payload, aggregate_id=command.agent_id, expected_version=version)


async def counts(sessions: async_sessionmaker[AsyncSession], agent_id: str) -> tuple[int, int, int]:
    async with sessions() as s:
        events = (
            await s.execute(text("SELECT count(*) FROM event_store WHERE aggregate_id = :a"), {"a": agent_id})
        ).scalar_one()
        outbox = (await s.execute(text("SELECT count(*) FROM outbox WHERE key = :a"), {"a": agent_id})).scalar_one()
        projected = (await s.execute(text("SELECT count(*) FROM projected"))).scalar_one()
    return int(events), int(outbox), int(projected)


async def test_the_event_its_outbox_row_and_its_projection_commit_together(sessions):
    uows = UnitOfWorks(sessions, producer="test", projector=project)
    who = caller()
    envelope = await uows.run(publish, PublishMetrics(agent_id="a1", metrics={"n": 1}), who)
    assert await counts(sessions, "a1") == (1, 1, 1)
    assert (envelope.producer, envelope.workspace_id, envelope.aggregate_version) == ("test", who.workspace_id, 1)
    assert (envelope.actor.user_id, envelope.correlation_id) == ("u1", "corr-1")
    async with sessions() as s:
        stored = await EventStore().load(s, AGGREGATE, "a1")
    assert [e.event_id for e in stored] == [envelope.event_id]


async def test_a_refusal_after_recording_leaves_no_event_no_outbox_row_no_projection(sessions):
    uows = UnitOfWorks(sessions, producer="test", projector=project)

    async def publish_then_refuse(command: PublishMetrics, uow: UnitOfWork) -> None:
        await publish(command, uow)
        raise NotFound("agent", command.agent_id)

    with pytest.raises(NotFound):
        await uows.run(publish_then_refuse, PublishMetrics(agent_id="a2", metrics={}), caller())
    assert await counts(sessions, "a2") == (0, 0, 0)


async def test_a_writer_that_lost_the_race_runs_again_on_the_new_state(sessions):
    uows = UnitOfWorks(sessions, producer="test", projector=project)
    who = caller()
    await uows.run(publish, PublishMetrics(agent_id="a3", metrics={"n": 1}), who)
    attempts = 0

    async def publish_while_another_writer_wins(command: PublishMetrics, uow: UnitOfWork) -> Envelope:
        nonlocal attempts
        attempts += 1
        version = len(await uow.load(AGGREGATE, command.agent_id))
        if attempts == 1:  # another writer appends the same next version and commits first
            await uows.run(publish, PublishMetrics(agent_id="a3", metrics={"n": 2}), who)
        payload = AgentMetricsUpdated(agent_id=command.agent_id, metrics=command.metrics)
        return await uow.record(payload, aggregate_id=command.agent_id, expected_version=version)

    envelope = await uows.run(publish_while_another_writer_wins, PublishMetrics(agent_id="a3", metrics={"n": 3}), who)
    assert attempts == 2 and envelope.aggregate_version == 3
    assert await counts(sessions, "a3") == (3, 3, 3)


async def test_a_writer_that_keeps_losing_is_refused_with_nothing_written(sessions):
    uows = UnitOfWorks(sessions, producer="test", projector=project, attempts=2)
    who = caller()
    await uows.run(publish, PublishMetrics(agent_id="a4", metrics={}), who)

    async def always_stale(command: PublishMetrics, uow: UnitOfWork) -> Envelope:
        payload = AgentMetricsUpdated(agent_id=command.agent_id, metrics=command.metrics)
        return await uow.record(payload, aggregate_id=command.agent_id, expected_version=0)

    with pytest.raises(Conflict) as refused:
        await uows.run(always_stale, PublishMetrics(agent_id="a4", metrics={}), who)
    assert refused.value.code == "revision_conflict"
    assert await counts(sessions, "a4") == (1, 1, 1)


async def test_several_events_of_one_stream_and_an_outbox_only_event_in_one_transaction(sessions):
    uows = UnitOfWorks(sessions, producer="test", projector=project)

    async def publish_three(command: PublishMetrics, uow: UnitOfWork) -> list[Envelope]:
        batch = [AgentMetricsUpdated(agent_id=command.agent_id, metrics={"n": n}) for n in (1, 2)]
        recorded = await uow.record_all(batch, aggregate_id=command.agent_id, expected_version=0)
        notice = AgentMetricsUpdated(agent_id="elsewhere", metrics={})
        await uow.publish(notice, aggregate_id="elsewhere", aggregate_version=7)
        return recorded

    recorded = await uows.run(publish_three, PublishMetrics(agent_id="a5", metrics={}), caller())
    assert [e.aggregate_version for e in recorded] == [1, 2]
    assert await counts(sessions, "a5") == (2, 2, 2)
    async with sessions() as s:
        published = (await s.execute(text("SELECT count(*) FROM outbox WHERE key = 'elsewhere'"))).scalar_one()
        stored = (
            await s.execute(text("SELECT count(*) FROM event_store WHERE aggregate_id = 'elsewhere'"))
        ).scalar_one()
    assert (published, stored) == (1, 0)

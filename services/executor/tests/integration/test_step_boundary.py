"""A step boundary is one statement on a real PostgreSQL: lease renewal, events, outbox rows and the
read-model row commit together, and nothing is written when the lease is gone or the stream moved on."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sous_events.envelope import EventPayload
from sous_events.events.executor import ExecutionRequested, ExecutionStarted, StepStarted
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, EventStore
from sous_events.tables import event_store, outbox
from sous_executor.adapters.execution_stream import PRODUCER, ExecutionStream
from sous_executor.adapters.leases import LeaseLost, Leases
from sous_executor.adapters.tables import executions, leases
from sous_executor.domain.execution import Execution
from sous_service.statement_pool import StatementPool

pytestmark = pytest.mark.integration
RECIPE = {"template_id": "r", "steps": [{"step_id": "s", "order": 1, "agent_id": "a", "prompt_template": "p"}]}


def envelopes(execution: Execution, *payloads: EventPayload, eid: str = "") -> list[Any]:
    """The next events of the execution's stream."""
    return [
        make_event(
            payload,
            producer=PRODUCER,
            workspace_id="w",
            aggregate_id=eid or execution.execution_id,
            aggregate_version=execution.version + offset,
        )
        for offset, payload in enumerate(payloads, start=1)
    ]


async def requested(sessions: async_sessionmaker[AsyncSession], owner: Leases, statements: StatementPool) -> Execution:
    """A requested execution, claimed by `owner`, its row projected: where a run starts."""
    eid = f"e-{uuid.uuid4().hex[:10]}"
    execution = Execution()
    first = envelopes(execution, ExecutionRequested(execution_id=eid, template_id="r", recipe=RECIPE), eid=eid)
    stream = ExecutionStream(sessions, EventStore(), owner, statements)
    async with sessions() as session, session.begin():
        await EventStore().append(session, first, expected_version=0)
        assert await owner.claim_new(session, eid, "w")
    execution.apply(first[0])
    await stream.append(
        execution, envelopes(execution, ExecutionStarted(execution_id=eid, template_id="r")), finish=False
    )
    return execution


async def counts(sessions: async_sessionmaker[AsyncSession], eid: str) -> tuple[int, int, int]:
    async with sessions() as session:
        events = await session.scalar(select(func.count()).where(event_store.c.aggregate_id == eid))
        rows = await session.scalar(select(func.count()).select_from(outbox).where(outbox.c.key == eid))
        version = await session.scalar(select(executions.c.version).where(executions.c.execution_id == eid))
    return int(events or 0), int(rows or 0), int(version or 0)


async def test_a_step_boundary_is_one_statement_that_writes_events_outbox_lease_and_row(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], statements: StatementPool
) -> None:
    owner = Leases(sessions, "runner-a", ttl_s=30)
    execution = await requested(sessions, owner, statements)
    eid = execution.execution_id
    async with sessions() as session:
        expiry_before = await session.scalar(select(leases.c.expires_at).where(leases.c.execution_id == eid))
    through_engine: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        through_engine.append(statement)

    sent_before = statements.statements_sent
    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        started = StepStarted(execution_id=eid, step_id="s", order=1)
        await ExecutionStream(sessions, EventStore(), owner, statements).append(
            execution, envelopes(execution, started), finish=False
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)

    # One statement, on the driver's pool: no BEGIN/COMMIT, no separate lease, outbox or projection statement.
    assert statements.statements_sent - sent_before == 1 and not through_engine
    assert await counts(sessions, eid) == (3, 3, 3)
    async with sessions() as session:
        lease = (await session.execute(select(leases).where(leases.c.execution_id == eid))).one()
        status = await session.scalar(select(executions.c.status).where(executions.c.execution_id == eid))
        stored = await session.scalar(
            select(event_store.c.envelope).where(
                event_store.c.aggregate_id == eid, event_store.c.aggregate_version == 3
            )
        )
    assert lease.expires_at >= expiry_before and not lease.finished
    assert status == execution.status == "running"
    assert stored["event_type"] == "StepStarted" and stored["payload"]["step_id"] == "s"


async def test_the_finishing_boundary_closes_the_lease(
    sessions: async_sessionmaker[AsyncSession], statements: StatementPool
) -> None:
    owner = Leases(sessions, "runner-a", ttl_s=30)
    execution = await requested(sessions, owner, statements)
    started = StepStarted(execution_id=execution.execution_id, step_id="s", order=1)
    await ExecutionStream(sessions, EventStore(), owner, statements).append(
        execution, envelopes(execution, started), finish=True
    )
    async with sessions() as session:
        finished = await session.scalar(
            select(leases.c.finished).where(leases.c.execution_id == execution.execution_id)
        )
    assert finished is True


async def test_a_runner_whose_lease_was_taken_writes_nothing(
    sessions: async_sessionmaker[AsyncSession], statements: StatementPool
) -> None:
    owner = Leases(sessions, "runner-a", ttl_s=30)
    execution = await requested(sessions, owner, statements)
    eid = execution.execution_id
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE execution_leases SET owner = 'runner-b' WHERE execution_id = :e"), {"e": eid}
        )
    started = StepStarted(execution_id=eid, step_id="s", order=1)
    with pytest.raises(LeaseLost):
        await ExecutionStream(sessions, EventStore(), owner, statements).append(
            execution, envelopes(execution, started), finish=False
        )
    assert await counts(sessions, eid) == (2, 2, 2)


async def test_an_append_behind_the_stream_is_a_conflict_and_writes_nothing(
    sessions: async_sessionmaker[AsyncSession], statements: StatementPool
) -> None:
    owner = Leases(sessions, "runner-a", ttl_s=30)
    execution = await requested(sessions, owner, statements)
    eid = execution.execution_id
    stale = Execution.from_events(await ExecutionStream(sessions, EventStore(), owner, statements).load(eid))
    stream = ExecutionStream(sessions, EventStore(), owner, statements)
    await stream.append(
        execution, envelopes(execution, StepStarted(execution_id=eid, step_id="s", order=1)), finish=False
    )
    with pytest.raises(ConcurrencyConflict):
        await stream.append(stale, envelopes(stale, StepStarted(execution_id=eid, step_id="s", order=1)), finish=False)
    assert await counts(sessions, eid) == (3, 3, 3)


async def test_concurrent_cancel_polls_share_one_statement(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], statements: StatementPool
) -> None:
    owner = Leases(sessions, "runner-a", ttl_s=30)
    runs = [await requested(sessions, owner, statements) for _ in range(5)]
    cancelled = runs[2].execution_id
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE executions SET cancel_requested = true WHERE execution_id = :e"), {"e": cancelled}
        )
    stream = ExecutionStream(sessions, EventStore(), owner, statements)
    through_engine: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        through_engine.append(statement)

    sent_before = statements.statements_sent
    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        flags = await asyncio.gather(*(stream.cancel_requested(run.execution_id) for run in runs))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert flags == [run.execution_id == cancelled for run in runs]
    assert statements.statements_sent - sent_before == 1 and not through_engine

"""Server-Sent Events of a workflow run: its stage events and, from stage 4, its execution's step events.

Both streams live in this service's event store, so one query in store order interleaves them; the SSE
`id` is the store position, and `Last-Event-ID` resumes after it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.tables import event_store
from sous_executor.workflows.model import WORKFLOW_RUN

KEEPALIVE_S = 15.0
EXECUTION = "Execution"


def _format(position: int, event_type: str, data: dict[str, object]) -> str:
    body = json.dumps(data, separators=(",", ":"), default=str)
    return f"id: {position}\nevent: {event_type}\ndata: {body}\n\n"


async def _execution_of(sessions: async_sessionmaker[AsyncSession], run_id: str) -> str | None:
    es = event_store.c
    async with sessions() as session:
        rows = (
            await session.execute(
                select(es.envelope).where(
                    es.aggregate_type == WORKFLOW_RUN,
                    es.aggregate_id == run_id,
                    es.event_type == "WorkflowStageStarted",
                )
            )
        ).all()
    for (envelope,) in rows:
        found = ((envelope.get("payload") or {}).get("detail") or {}).get("execution_id")
        if found:
            return str(found)
    return None


async def stream_run(
    sessions: async_sessionmaker[AsyncSession], run_id: str, after: int, poll_s: float
) -> AsyncIterator[str]:
    es = event_store.c
    last = after
    idle = 0.0
    execution_id = await _execution_of(sessions, run_id)
    yield "retry: 1000\n\n"
    while True:
        streams = [and_(es.aggregate_type == WORKFLOW_RUN, es.aggregate_id == run_id)]
        if execution_id:
            streams.append(and_(es.aggregate_type == EXECUTION, es.aggregate_id == execution_id))
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(es.position, es.event_type, es.envelope)
                    .where(or_(*streams), es.position > last)
                    .order_by(es.position)
                )
            ).all()
        for position, event_type, envelope in rows:
            last = position
            yield _format(position, event_type, envelope)
            if event_type == "WorkflowRunFinished":
                return
            found = ((envelope.get("payload") or {}).get("detail") or {}).get("execution_id")
            if found and not execution_id:
                # Query again from here: this batch was read without the execution's events.
                execution_id = str(found)
                break
        if rows:
            idle = 0.0
        else:
            idle += poll_s
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"
        await asyncio.sleep(poll_s)

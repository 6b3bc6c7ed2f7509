"""Server-Sent Events of one execution: stored events first, then new ones live, until it finishes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.tables import event_store
from sous_executor.adapters.tables import executions
from sous_executor.engine.runner import AGGREGATE

KEEPALIVE_S = 15.0


def format_event(version: int, event_type: str, data: dict[str, object]) -> str:
    body = json.dumps(data, separators=(",", ":"), default=str)
    return f"id: {version}\nevent: {event_type}\ndata: {body}\n\n"


async def stream_execution(
    sessions: async_sessionmaker[AsyncSession], execution_id: str, after_version: int, poll_s: float
) -> AsyncIterator[str]:
    last = after_version
    idle = 0.0
    yield "retry: 1000\n\n"
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(event_store.c.aggregate_version, event_store.c.event_type, event_store.c.envelope)
                    .where(
                        event_store.c.aggregate_type == AGGREGATE,
                        event_store.c.aggregate_id == execution_id,
                        event_store.c.aggregate_version > last,
                    )
                    .order_by(event_store.c.aggregate_version)
                )
            ).all()
        for version, event_type, envelope in rows:
            last = version
            yield format_event(version, event_type, envelope)
            if event_type == "ExecutionFinished":
                return
        if rows:
            idle = 0.0
        elif await _finished(sessions, execution_id):
            return
        else:
            idle += poll_s
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"
        await asyncio.sleep(poll_s)


async def _finished(sessions: async_sessionmaker[AsyncSession], execution_id: str) -> bool:
    async with sessions() as session:
        status = (
            await session.execute(select(executions.c.status).where(executions.c.execution_id == execution_id))
        ).scalar_one_or_none()
    return status in ("completed", "failed", "cancelled")

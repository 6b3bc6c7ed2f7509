"""Server-Sent Events of one execution: stored events first, then new ones live, until it finishes.

A stream reads the event store only when the process-wide listener says its execution has grown (see
adapters/event_notifications.py); between events it costs nothing but a keep-alive comment now and then,
which also tells the gateway the upstream is alive.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.tables import event_store
from sous_executor.adapters.event_notifications import EventNotifications
from sous_executor.adapters.execution_stream import AGGREGATE
from sous_executor.adapters.tables import executions

KEEPALIVE_S = 15.0
_TERMINAL = ("completed", "failed", "cancelled")


def format_event(version: int, event_type: str, data: dict[str, object]) -> str:
    body = json.dumps(data, separators=(",", ":"), default=str)
    return f"id: {version}\nevent: {event_type}\ndata: {body}\n\n"


async def stream_execution(
    sessions: async_sessionmaker[AsyncSession],
    notifications: EventNotifications,
    execution_id: str,
    after_version: int,
    *,
    keepalive_s: float = KEEPALIVE_S,
) -> AsyncIterator[str]:
    last = after_version
    yield "retry: 1000\n\n"
    last_sent = time.monotonic()
    with notifications.subscribe(AGGREGATE, execution_id) as wake:
        woken = True  # the first pass reads what is stored already
        while True:
            if woken:
                # Cleared before reading: an append that commits during the read wakes the next pass.
                wake.clear()
                rows = await _events_after(sessions, execution_id, last)
                for version, event_type, envelope in rows:
                    last = version
                    yield format_event(version, event_type, envelope)
                    last_sent = time.monotonic()
                    if event_type == "ExecutionFinished":
                        return
                if not rows and await _finished(sessions, execution_id):
                    # The finish may have committed between the read above and this look at the status:
                    # what it appended is read once more, so a stream never ends without its last events.
                    for version, event_type, envelope in await _events_after(sessions, execution_id, last):
                        yield format_event(version, event_type, envelope)
                    return
            if time.monotonic() - last_sent >= keepalive_s:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            # A look at the store on every keep-alive as well: a notification lost in transit costs at
            # most one interval, never a stream frozen until the next append.
            woken = await notifications.wait(wake, keepalive_s) or time.monotonic() - last_sent >= keepalive_s


async def _events_after(
    sessions: async_sessionmaker[AsyncSession], execution_id: str, after: int
) -> list[tuple[int, str, Any]]:
    async with sessions() as session:
        rows = (
            await session.execute(
                select(event_store.c.aggregate_version, event_store.c.event_type, event_store.c.envelope)
                .where(
                    event_store.c.aggregate_type == AGGREGATE,
                    event_store.c.aggregate_id == execution_id,
                    event_store.c.aggregate_version > after,
                )
                .order_by(event_store.c.aggregate_version)
            )
        ).all()
    return [(int(v), str(t), e) for v, t, e in rows]


async def _finished(sessions: async_sessionmaker[AsyncSession], execution_id: str) -> bool:
    async with sessions() as session:
        status = (
            await session.execute(select(executions.c.status).where(executions.c.execution_id == execution_id))
        ).scalar_one_or_none()
    return status in _TERMINAL

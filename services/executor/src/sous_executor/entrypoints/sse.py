"""Server-Sent Events of one execution: stored events first, then new ones live, until it finishes.

A stream reads the event store only when the process-wide listener says its execution has grown (see
adapters/event_notifications.py); between events it costs nothing but a keep-alive comment now and then,
which also tells the gateway the upstream is alive. A read is one statement outside a transaction (no
BEGIN/ROLLBACK round trips), and each event is sent as the JSON text PostgreSQL holds, never decoded and
encoded again on the way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sous_executor.adapters.event_notifications import EventNotifications
from sous_executor.adapters.execution_stream import AGGREGATE

KEEPALIVE_S = 15.0
_TERMINAL = ("completed", "failed", "cancelled")
# jsonb's text form never holds a line break (strings keep theirs escaped): one `data:` line per event.
_EVENTS_AFTER = (
    "SELECT aggregate_version, event_type, envelope::text FROM event_store "
    "WHERE aggregate_type = $1 AND aggregate_id = $2 AND aggregate_version > $3 ORDER BY aggregate_version"
)
_STATUS = "SELECT status FROM executions WHERE execution_id = $1"


def format_event(version: int, event_type: str, envelope_json: str) -> str:
    return f"id: {version}\nevent: {event_type}\ndata: {envelope_json}\n\n"


def stream_reads(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine streams read with: each statement on its own, outside a transaction."""
    bind = sessions.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind.execution_options(isolation_level="AUTOCOMMIT")


async def stream_execution(
    reads: AsyncEngine,
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
                rows = await _events_after(reads, execution_id, last)
                if rows:
                    # One chunk per read: each chunk is a trip through the middleware and a socket write.
                    ending = next((i for i, row in enumerate(rows) if row[1] == "ExecutionFinished"), None)
                    sent = rows if ending is None else rows[: ending + 1]
                    last = sent[-1][0]
                    yield "".join(format_event(*row) for row in sent)
                    last_sent = time.monotonic()
                    if ending is not None:
                        return
                elif await _finished(reads, execution_id):
                    # The finish may have committed between the read above and this look at the status:
                    # what it appended is read once more, so a stream never ends without its last events.
                    rest = await _events_after(reads, execution_id, last)
                    if rest:
                        yield "".join(format_event(*row) for row in rest)
                    return
            if time.monotonic() - last_sent >= keepalive_s:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            # A look at the store on every keep-alive as well: a notification lost in transit costs at
            # most one interval, never a stream frozen until the next append.
            woken = await notifications.wait(wake, keepalive_s) or time.monotonic() - last_sent >= keepalive_s


async def _events_after(reads: AsyncEngine, execution_id: str, after: int) -> list[tuple[int, str, str]]:
    async with reads.connect() as conn:
        rows: list[Any] = list((await conn.exec_driver_sql(_EVENTS_AFTER, (AGGREGATE, execution_id, after))).all())
    return [(int(version), str(event_type), str(envelope)) for version, event_type, envelope in rows]


async def _finished(reads: AsyncEngine, execution_id: str) -> bool:
    async with reads.connect() as conn:
        status = (await conn.exec_driver_sql(_STATUS, (execution_id,))).scalar_one_or_none()
    return status in _TERMINAL

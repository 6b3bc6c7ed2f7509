"""Server-Sent Events of one execution: stored events first, then new ones live, until it finishes.

A stream reads the event store only when the process-wide listener says its execution has grown past what
the stream was given (see adapters/event_notifications.py): the events of a run this process drives are
handed over as they commit, and sent without being read back. Between events a stream costs nothing but a
keep-alive comment now and then, which also tells the gateway the upstream is alive. A read is one statement
outside a transaction (no BEGIN/ROLLBACK round trips). Each event is sent as its JSON text (as PostgreSQL
holds it, or as it was appended), never decoded and encoded again on the way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from sous_executor.adapters.event_notifications import EventNotifications, Row
from sous_executor.adapters.execution_stream import AGGREGATE
from sous_service.statement_pool import StatementPool

KEEPALIVE_S = 15.0
# One statement per pass, one snapshot: the events after the last one sent and, as a last row without a
# version, the execution's status when it is terminal. The finish appends its events and sets the status in
# one transaction, so a terminal status read here comes with every event of the finish.
# jsonb's text form never holds a line break (strings keep theirs escaped): one `data:` line per event.
_PASS = (
    "SELECT aggregate_version, event_type, envelope::text FROM event_store "
    "WHERE aggregate_type = $1 AND aggregate_id = $2 AND aggregate_version > $3 "
    "UNION ALL SELECT NULL, status, NULL FROM executions "
    "WHERE execution_id = $2 AND status IN ('completed', 'failed', 'cancelled') "
    "ORDER BY 1 NULLS LAST"
)


def format_event(version: int, event_type: str, envelope_json: str) -> str:
    return f"id: {version}\nevent: {event_type}\ndata: {envelope_json}\n\n"


async def stream_execution(
    reads: StatementPool,
    notifications: EventNotifications,
    execution_id: str,
    after_version: int,
    *,
    keepalive_s: float = KEEPALIVE_S,
) -> AsyncIterator[str]:
    last = after_version
    # Sent with the first events (one chunk, one socket write), or alone before the stream first waits.
    opening = "retry: 1000\n\n"
    last_sent = time.monotonic()
    with notifications.subscribe(AGGREGATE, execution_id) as subscription:
        woken = True  # the first pass reads what is stored already
        while True:
            if woken:
                # Cleared before taking and reading: an append that commits meanwhile wakes the next pass.
                subscription.woken.clear()
                rows, read = subscription.take(last)
                finished = False
                if read:
                    stored, finished = await read_pass(reads, execution_id, rows[-1][0] if rows else last)
                    rows += stored
                ending = next((i for i, row in enumerate(rows) if row[1] == "ExecutionFinished"), None)
                sent = rows if ending is None else rows[: ending + 1]
                if sent:
                    # One chunk per pass: each chunk is a trip through the middleware and a socket write.
                    last = sent[-1][0]
                    yield opening + "".join(format_event(*row) for row in sent)
                    opening = ""
                    last_sent = time.monotonic()
                if opening:
                    yield opening
                    opening = ""
                if finished or ending is not None:
                    return
            if time.monotonic() - last_sent >= keepalive_s:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            woken = await notifications.wait(subscription, keepalive_s)
            if not woken and time.monotonic() - last_sent >= keepalive_s:
                # A look at the store on every keep-alive as well: a notification lost in transit costs at
                # most one interval, never a stream frozen until the next append.
                subscription.unknown = woken = True


async def read_pass(reads: StatementPool, execution_id: str, after: int) -> tuple[list[Row], bool]:
    """(the events after `after`, whether the execution has finished), read in one statement on the driver's
    own connection: rows arrive as asyncpg records, with no cursor or result objects around them."""
    records = await reads.fetch(_PASS, AGGREGATE, execution_id, after)
    finished = bool(records) and records[-1][0] is None
    return [(r[0], r[1], r[2]) for r in (records[:-1] if finished else records)], finished

"""Parked outbox rows: what operators see and do about events the broker refused.

A parked row keeps its event (value, headers) and the broker's last refusal. Re-sending clears the
parking mark and wakes the relay, which tries again in order (and parks the row again if the broker still
refuses it). Discarding marks it handled without publishing, which releases the later events of its key:
only for an event that can never be delivered, since its consumers will not see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_events.store import OUTBOX_CHANNEL

DISCARDED_PREFIX = "discarded by an operator; last error: "


@dataclass(frozen=True)
class ParkedRow:
    id: int
    event_id: str
    topic: str
    key: str
    size: int
    attempts: int
    parked_at: datetime
    created_at: datetime
    last_error: str
    held_back: int  # later unsent rows of the same key waiting behind this one


_PARKED = """
SELECT o.id, o.event_id, o.topic, o.key, octet_length(o.value) AS size, o.attempts, o.parked_at, o.created_at,
       coalesce(o.last_error, '') AS last_error,
       (SELECT count(*) FROM outbox w WHERE w.key = o.key AND w.id > o.id AND w.sent_at IS NULL) AS held_back
FROM outbox o
WHERE o.parked_at IS NOT NULL AND o.sent_at IS NULL {extra}
ORDER BY o.id
LIMIT :limit
"""


async def parked_rows(engine: AsyncEngine, *, limit: int = 100) -> list[ParkedRow]:
    async with engine.connect() as conn:
        result = await conn.execute(text(_PARKED.format(extra="")), {"limit": limit})
        return [ParkedRow(**row._asdict()) for row in result]


async def parked_row(engine: AsyncEngine, row_id: int) -> ParkedRow | None:
    async with engine.connect() as conn:
        result = await conn.execute(text(_PARKED.format(extra="AND o.id = :id")), {"limit": 1, "id": row_id})
        row = result.first()
        return ParkedRow(**row._asdict()) if row is not None else None


async def parked_count(engine: AsyncEngine) -> int:
    """For alerting: anything above zero needs an operator."""
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL AND sent_at IS NULL"))
        return int(result.scalar_one())


async def resend(engine: AsyncEngine, ids: Sequence[int] | None = None) -> list[int]:
    """Unpark the given rows (every parked row when `ids` is None); returns the ids released."""
    where = "parked_at IS NOT NULL AND sent_at IS NULL"
    params: dict[str, object] = {}
    if ids is not None:
        where += " AND id = ANY(:ids)"
        params["ids"] = list(ids)
    async with engine.begin() as conn:
        result = await conn.execute(text(f"UPDATE outbox SET parked_at = NULL WHERE {where} RETURNING id"), params)
        released = sorted(int(r) for r in result.scalars())
        if released:
            await conn.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
    return released


async def discard(engine: AsyncEngine, row_id: int) -> bool:
    """Give up on one parked row: it is never published and its key's later events flow again."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                "UPDATE outbox SET sent_at = now(), last_error = :prefix || coalesce(last_error, '') "
                "WHERE id = :id AND parked_at IS NOT NULL AND sent_at IS NULL RETURNING id"
            ),
            {"id": row_id, "prefix": DISCARDED_PREFIX},
        )
        done = result.first() is not None
        if done:
            await conn.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
    return done

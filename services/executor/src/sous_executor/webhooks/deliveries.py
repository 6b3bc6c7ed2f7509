"""Per-webhook rate limit and replay refusal, in the transaction that starts the execution.

A delivery's id is recorded only if its execution starts: a sender that retries after a refusal
(rate limit, concurrency limit) is not mistaken for a replay.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sous_executor.webhooks.signing import TOLERANCE_S
from sous_executor.webhooks.tables import webhook_deliveries
from sous_service.domain_errors import Conflict, RateLimited

D = webhook_deliveries.c
WINDOW = timedelta(seconds=60)
# Ids are kept past the timestamp window on both sides; an older replay fails the timestamp check.
RETENTION = timedelta(seconds=2 * TOLERANCE_S + 60)


def _lock_key(webhook_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"sous-webhook:{webhook_id}".encode()).digest()[:8], "big", signed=True)


async def admit(session: AsyncSession, webhook_id: str, message_id: str, per_minute: int) -> None:
    """Refuses a delivery over the webhook's rate (RateLimited) or of a message id already delivered (Conflict)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_lock_key(webhook_id)))
    now = datetime.now(UTC)
    await session.execute(delete(webhook_deliveries).where(D.webhook_id == webhook_id, D.received_at < now - RETENTION))
    recent = (
        await session.execute(select(func.count()).where(D.webhook_id == webhook_id, D.received_at > now - WINDOW))
    ).scalar_one()
    if recent >= per_minute:
        raise RateLimited(
            f"this webhook accepts {per_minute} deliveries per minute", retry_after_s=60, limit=per_minute
        )
    inserted = (
        await session.execute(
            insert(webhook_deliveries)
            .values(webhook_id=webhook_id, message_id=message_id, received_at=now)
            .on_conflict_do_nothing()
            .returning(D.message_id)
        )
    ).first()
    if inserted is None:
        raise Conflict("this webhook-id was already delivered", code="webhook_replayed")

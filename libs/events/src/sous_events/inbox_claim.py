"""Claiming events in a consumer's inbox: the row that makes applying an event happen once."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.envelope import Envelope
from sous_events.tables import inbox


async def claim(session: AsyncSession, consumer: str, envelopes: Sequence[Envelope]) -> list[Envelope]:
    """Insert the inbox rows of all the envelopes in one statement, in the caller's transaction.

    Returns the envelopes this consumer had not seen, in their order, each once (a record delivered twice
    within one batch is claimed by its first copy).
    """
    if not envelopes:
        return []
    inserted = await session.execute(
        pg_insert(inbox)
        .values([{"consumer": consumer, "event_id": e.event_id} for e in envelopes])
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    new = set(inserted.scalars())
    claimed: list[Envelope] = []
    for envelope in envelopes:
        if envelope.event_id in new:
            new.discard(envelope.event_id)
            claimed.append(envelope)
    return claimed

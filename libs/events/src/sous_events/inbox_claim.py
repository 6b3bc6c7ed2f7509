"""Claiming events in a consumer's inbox: the row that makes applying an event happen once."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import driver
from sous_events.envelope import Envelope

# One statement whatever the batch size (the ids travel as one array), so each connection prepares it once.
CLAIM_SQL = (
    "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id"
)


async def claim(session: AsyncSession, consumer: str, envelopes: Sequence[Envelope]) -> list[Envelope]:
    """Insert the inbox rows of all the envelopes in one statement, in the caller's transaction.

    Returns the envelopes this consumer had not seen, in their order, each once (a record delivered twice
    within one batch is claimed by its first copy).
    """
    if not envelopes:
        return []
    inserted = await driver.fetch(session, CLAIM_SQL, consumer, [e.event_id for e in envelopes])
    new = {row[0] for row in inserted}
    claimed: list[Envelope] = []
    for envelope in envelopes:
        if envelope.event_id in new:
            new.discard(envelope.event_id)
            claimed.append(envelope)
    return claimed

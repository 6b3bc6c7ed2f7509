"""The replicas consumer: catalog recipes and agents, and quality scores, into the marketplace's tables.

A new rolling quality score also moves the recipe's approved listings in or out of "flagged" (in the same
transaction as the replica update, so a redelivered event finds the flag already set and appends nothing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import topics
from sous_events.envelope import Envelope
from sous_marketplace.adapters.replicas import CONSUMED_EVENT_TYPES, apply_consumed
from sous_service.runtime import ConsumerSpec

FollowQuality = Callable[[AsyncSession, Envelope], Awaitable[None]]


def replicas_consumer(group: str, follow_quality: FollowQuality) -> ConsumerSpec:
    async def handle(session: AsyncSession, event: Envelope) -> None:
        await apply_consumed(session, event)
        if event.event_type == "QualityAssessed":
            await follow_quality(session, event)

    return ConsumerSpec(
        name=group,
        topics=[topics.CATALOG_RECIPES, topics.CATALOG_AGENTS, topics.QUALITY],
        handler=handle,
        event_types=CONSUMED_EVENT_TYPES,
    )

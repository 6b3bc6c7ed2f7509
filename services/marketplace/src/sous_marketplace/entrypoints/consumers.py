"""The replicas consumer: catalog recipes and agents, and quality scores, into the marketplace's tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import topics
from sous_events.envelope import Envelope
from sous_marketplace.adapters.replicas import CONSUMED_EVENT_TYPES, apply_consumed
from sous_service.runtime import ConsumerSpec


async def handle(session: AsyncSession, event: Envelope) -> None:
    await apply_consumed(session, event)


def replicas_consumer(group: str) -> ConsumerSpec:
    return ConsumerSpec(
        name=group,
        topics=[topics.CATALOG_RECIPES, topics.CATALOG_AGENTS, topics.QUALITY],
        handler=handle,
        event_types=CONSUMED_EVENT_TYPES,
    )

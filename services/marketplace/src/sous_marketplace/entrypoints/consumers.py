"""The replicas consumer: catalog recipes and agents, and quality scores, into the marketplace's tables.

A new rolling quality score also moves the recipe's approved listings in or out of "flagged" (the
FollowRecipeQuality handler, in a unit of work joined to the replica update's transaction, so a redelivered
event finds the flag already set and appends nothing).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.envelope import Envelope
from sous_events.events import QualityAssessed
from sous_marketplace.adapters import replicas
from sous_marketplace.commands import FollowRecipeQuality
from sous_marketplace.config import MarketplaceSettings
from sous_marketplace.handlers import MarketplaceHandlers, unit_of_works
from sous_service.caller import Caller
from sous_service.runtime import ConsumerSpec, ServiceRuntime


def replicas_consumer(settings: MarketplaceSettings, runtime: ServiceRuntime) -> ConsumerSpec:
    handlers = MarketplaceHandlers.from_settings(settings)
    uows = unit_of_works(runtime.sessions, runtime.store)

    async def quality_assessed(session: AsyncSession, event: Envelope, payload: replicas.AssessedScore) -> None:
        listed = await replicas.on_quality_assessed(session, event, payload)
        if not listed:
            return  # most recipes are not listed: nothing to flag or clear
        # The platform flags a listing, caused by the assessment.
        caller = Caller.from_event(event, user_id="system", auth_type="system")
        command = FollowRecipeQuality(
            template_id=payload.template_id, execution_id=payload.execution_id, listing_ids=listed
        )
        await handlers.follow_quality(command, uows.joined(session, caller))

    return ConsumerSpec(
        name=settings.consumer_group,
        handlers={**replicas.HANDLERS, QualityAssessed: quality_assessed},
        views=replicas.VIEWS,
    )

"""Event entry points: the executor's executions and the catalog's recipes, in one consumer group.

Each record is applied in the runner's inbox transaction, so a redelivered event is skipped, and an
auto-learning assessment appends its events through the outbox in that same transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import topics
from sous_events.envelope import Envelope
from sous_quality.handlers import QualityService
from sous_service.runtime import ConsumerSpec

RECIPE_EVENTS = ("RecipeCreated", "RecipeUpdated", "RecipeDeleted")
EXECUTION_EVENTS = (
    "ExecutionRequested",
    "ExecutionStarted",
    "StepStarted",
    "StepCompleted",
    "StepFailed",
    "StepRetryScheduled",
    "StepSkipped",
    "ExecutionFinished",
)


def consumer_spec(service: QualityService, group: str) -> ConsumerSpec:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.event_type in RECIPE_EVENTS:
            await service.on_recipe_event(session, envelope)
        else:
            await service.on_execution_event(session, envelope)

    return ConsumerSpec(
        name=group,
        topics=[topics.EXECUTOR_EXECUTIONS, topics.CATALOG_RECIPES],
        handler=handle,
        event_types=(*RECIPE_EVENTS, *EXECUTION_EVENTS),
    )

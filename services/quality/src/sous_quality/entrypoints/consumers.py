"""Event entry points: the executor's executions and the catalog's recipes, in one consumer group.

Each record is applied in the runner's inbox transaction, so a redelivered event is skipped, and the
quality events an outcome causes (agent metrics, an auto-learning assessment) go through the outbox in
that same transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import topics
from sous_events.envelope import Envelope
from sous_quality import replicas
from sous_quality.handlers import QualityHandlers
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


def consumer_spec(handlers: QualityHandlers, group: str) -> ConsumerSpec:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        kind = envelope.event_type
        if kind in RECIPE_EVENTS:
            await replicas.keep_recipe(session, envelope)
            return
        await replicas.keep_execution(session, envelope)
        if kind in ("StepCompleted", "StepFailed"):
            await handlers.count_step_outcome(session, envelope)
        elif kind == "ExecutionFinished":
            await handlers.learn_after_run(session, envelope)

    return ConsumerSpec(
        name=group,
        topics=[topics.EXECUTOR_EXECUTIONS, topics.CATALOG_RECIPES],
        handler=handle,
        event_types=(*RECIPE_EVENTS, *EXECUTION_EVENTS),
    )

"""Event entry points: the executor's executions and the catalog's recipes, in one consumer group.

Each record is applied in the runner's inbox transaction, so a redelivered event is skipped: the copies
are kept (`replicas`), then what the event causes (an agent's attempt counted, an auto-learning
assessment) runs in a unit of work joined to that transaction, its events going out through the outbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import topics
from sous_events.envelope import Envelope
from sous_events.events import ExecutionFinished, StepCompleted, StepFailed
from sous_quality import handlers, replicas
from sous_quality.commands import CountAgentAttempt, LearnFromFinishedRun
from sous_quality.config import QualitySettings
from sous_service.caller import Caller
from sous_service.runtime import ConsumerSpec, ServiceRuntime
from sous_service.unit_of_work import UnitOfWorks

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


def dispatcher(uows: UnitOfWorks) -> Callable[[AsyncSession, Envelope], Awaitable[None]]:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.event_type in RECIPE_EVENTS:
            await replicas.keep_recipe(session, envelope)
            return
        await replicas.keep_execution(session, envelope)
        payload = envelope.typed()
        uow = uows.joined(session, Caller.from_event(envelope))
        if isinstance(payload, (StepCompleted, StepFailed)):
            await handlers.count_agent_attempt(CountAgentAttempt(outcome=payload), uow)
        elif isinstance(payload, ExecutionFinished):
            command = LearnFromFinishedRun(template_id=payload.recipe_id, execution_id=payload.execution_id)
            await handlers.learn_from_finished_run(command, uow)

    return handle


def quality_consumer(settings: QualitySettings, runtime: ServiceRuntime) -> ConsumerSpec:
    return ConsumerSpec(
        name=settings.consumer_group,
        topics=[topics.EXECUTOR_EXECUTIONS, topics.CATALOG_RECIPES],
        handler=dispatcher(handlers.unit_of_works(runtime.sessions, runtime.store)),
        event_types=(*RECIPE_EVENTS, *EXECUTION_EVENTS),
    )

"""Event entry points: the executor's executions and the catalog's recipes, in one consumer group.

Each record is applied in the runner's inbox transaction, so a redelivered event is skipped: the copies
are kept (`replicas`), then what the event causes (an agent's attempt counted, an auto-learning
assessment) runs in a unit of work joined to that transaction, its events going out through the outbox.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import events as ev
from sous_events.dispatch import TypedHandler
from sous_events.envelope import Envelope, EventPayload
from sous_quality import handlers, replicas
from sous_quality.commands import CountAgentAttempt, LearnFromFinishedRun
from sous_quality.config import QualitySettings
from sous_service.caller import Caller
from sous_service.runtime import ConsumerSpec, ServiceRuntime
from sous_service.unit_of_work import UnitOfWorks

# Kept in the copies only; outcomes and finishes also count and learn (below).
COPIED = (ev.ExecutionRequested, ev.ExecutionStarted, ev.StepStarted, ev.StepRetryScheduled, ev.StepSkipped)


def consumed(uows: UnitOfWorks) -> dict[type[EventPayload], TypedHandler]:
    """What the quality consumer handles: each payload class with its handler."""

    async def step_outcome(
        session: AsyncSession, envelope: Envelope, payload: ev.StepCompleted | ev.StepFailed
    ) -> None:
        await replicas.keep_execution(session, envelope, payload)
        uow = uows.joined(session, Caller.from_event(envelope))
        await handlers.count_agent_attempt(CountAgentAttempt(outcome=payload), uow)

    async def finished(session: AsyncSession, envelope: Envelope, payload: ev.ExecutionFinished) -> None:
        await replicas.keep_execution(session, envelope, payload)
        uow = uows.joined(session, Caller.from_event(envelope))
        command = LearnFromFinishedRun(template_id=payload.template_id, execution_id=payload.execution_id)
        await handlers.learn_from_finished_run(command, uow)

    return {
        ev.RecipeCreated: replicas.keep_recipe,
        ev.RecipeUpdated: replicas.keep_recipe,
        ev.RecipeDeleted: replicas.keep_recipe,
        **{payload: replicas.keep_execution for payload in COPIED},
        ev.StepCompleted: step_outcome,
        ev.StepFailed: step_outcome,
        ev.ExecutionFinished: finished,
    }


def quality_consumer(settings: QualitySettings, runtime: ServiceRuntime) -> ConsumerSpec:
    uows = handlers.unit_of_works(runtime.sessions, runtime.store)
    return ConsumerSpec(name=settings.consumer_group, handlers=consumed(uows))

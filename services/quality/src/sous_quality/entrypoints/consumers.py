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
from sous_quality.adapters import copies
from sous_quality.commands import CountAgentAttempts, LearnFromFinishedRun
from sous_quality.config import QualitySettings
from sous_service.caller import Caller
from sous_service.runtime import ConsumerSpec, ServiceRuntime
from sous_service.unit_of_work import UnitOfWorks

# Kept in the copies only; outcomes and finishes also count and learn (below). A step's start and retries are
# not read: a step's copy is written by its outcome (StepCompleted, StepFailed, StepSkipped), which says all the
# scoring reads, and every step of a finished run has one. Leaving them out spares the group a transaction
# per step.
COPIED = (ev.ExecutionStarted, ev.StepSkipped)
# Read through views of the fields kept (docs/events.md).
VIEWS: dict[type[EventPayload], type[EventPayload]] = {ev.ExecutionRequested: replicas.RequestedRun}
# Where a batch's session keeps the step outcomes it has yet to count (sessions are one per batch transaction).
ATTEMPTS_KEY = "sous_quality.attempts_to_count"


class AttemptsToCount:
    """The step outcomes of the batch being applied, by agent: each agent's are counted at the batch's end, in
    one AgentMetricsUpdated with the totals after all of them (in the batch's transaction, like the records)."""

    def __init__(self, uows: UnitOfWorks) -> None:
        self.uows = uows

    def add(self, session: AsyncSession, envelope: Envelope, outcome: ev.StepCompleted | ev.StepFailed) -> None:
        if not outcome.agent_id:
            return
        waiting: dict[str, tuple[list[ev.StepCompleted | ev.StepFailed], Envelope]]
        waiting = session.info.setdefault(ATTEMPTS_KEY, {})
        outcomes, _ = waiting.get(outcome.agent_id, ([], envelope))
        outcomes.append(outcome)
        # The event is recorded as caused by the agent's last outcome of the batch.
        waiting[outcome.agent_id] = (outcomes, envelope)

    async def count(self, session: AsyncSession) -> None:
        waiting = session.info.pop(ATTEMPTS_KEY, None) or {}
        for agent_id, (outcomes, envelope) in waiting.items():
            uow = self.uows.joined(session, Caller.from_event(envelope))
            await handlers.count_agent_attempts(CountAgentAttempts(agent_id=agent_id, outcomes=outcomes), uow)


def consumed(uows: UnitOfWorks, attempts: AttemptsToCount) -> dict[type[EventPayload], TypedHandler]:
    """What the quality consumer handles: each payload class with its handler."""

    async def step_outcome(
        session: AsyncSession, envelope: Envelope, payload: ev.StepCompleted | ev.StepFailed
    ) -> None:
        await replicas.keep_execution(session, envelope, payload)
        attempts.add(session, envelope, payload)

    async def finished(session: AsyncSession, envelope: Envelope, payload: ev.ExecutionFinished) -> None:
        await replicas.keep_execution(session, envelope, payload)
        uow = uows.joined(session, Caller.from_event(envelope))
        command = LearnFromFinishedRun(template_id=payload.template_id, execution_id=payload.execution_id)
        await handlers.learn_from_finished_run(command, uow)

    return {
        ev.RecipeCreated: replicas.keep_recipe,
        ev.RecipeUpdated: replicas.keep_recipe,
        ev.RecipeDeleted: replicas.keep_recipe,
        ev.ExecutionRequested: replicas.keep_requested,
        **{payload: replicas.keep_execution for payload in COPIED},
        ev.StepCompleted: step_outcome,
        ev.StepFailed: step_outcome,
        ev.ExecutionFinished: finished,
    }


def consumer_spec(name: str, uows: UnitOfWorks) -> ConsumerSpec:
    """The quality consumer group `name`: its handlers, and at the batch's end its staged step outcomes written
    and its attempts counted."""
    attempts = AttemptsToCount(uows)

    async def batch_end(session: AsyncSession) -> None:
        await copies.flush_steps(session)
        await attempts.count(session)

    return ConsumerSpec(name=name, handlers=consumed(uows, attempts), views=VIEWS, after_batch=batch_end)


def quality_consumer(settings: QualitySettings, runtime: ServiceRuntime) -> ConsumerSpec:
    return consumer_spec(settings.consumer_group, handlers.unit_of_works(runtime.sessions, runtime.store))

"""Use cases: assess and learn from a finished execution, count agents' attempts.

Every function takes a session already inside a transaction (the API's request transaction or the
consumer's inbox transaction). A decision is made by an aggregate from its locked snapshot row; the event
is appended at the snapshot's version (so the event, its outbox row and the projection commit together,
and a decision from a stale snapshot is refused as a ConcurrencyConflict).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.envelope import SYSTEM_ACTOR, Actor, Envelope, EventPayload, utcnow
from sous_events.events import ExecutionFinished, StepCompleted, StepFailed
from sous_events.registry import make_event
from sous_events.store import EventStore
from sous_quality import projections
from sous_quality.adapters import copies, repository, views
from sous_quality.domain.errors import ExecutionNotFound

PRODUCER = "quality"


@dataclass(frozen=True)
class Cause:
    """Who and what caused a write: carried into the events' envelopes."""

    actor: Actor = SYSTEM_ACTOR
    correlation_id: str = ""
    causation_id: str = ""

    @classmethod
    def of(cls, envelope: Envelope) -> Cause:
        """A write caused by a consumed event."""
        return cls(actor=envelope.actor, correlation_id=envelope.correlation_id, causation_id=envelope.event_id)


@dataclass(frozen=True)
class AssessExecution:
    workspace_id: str
    template_id: str
    execution_id: str


@dataclass(frozen=True)
class LearnFromExecution:
    workspace_id: str
    template_id: str
    execution_id: str


class QualityHandlers:
    def __init__(self, store: EventStore | None = None) -> None:
        self.store = store or EventStore()

    async def _append(
        self,
        session: AsyncSession,
        payload: EventPayload,
        *,
        workspace_id: str,
        aggregate_id: str,
        expected_version: int,
        cause: Cause,
        occurred_at: datetime | None = None,
    ) -> None:
        """Append one event to an aggregate's stream and project it, so live and rebuilt read models agree."""
        event = make_event(
            payload,
            producer=PRODUCER,
            workspace_id=workspace_id,
            aggregate_id=aggregate_id,
            aggregate_version=expected_version + 1,
            correlation_id=cause.correlation_id,
            causation_id=cause.causation_id,
            actor=cause.actor,
        )
        if occurred_at is not None:
            event = event.model_copy(update={"occurred_at": occurred_at})
        await self.store.append(session, [event], expected_version=expected_version)
        await projections.apply(session, event)

    # --- agent metrics ---------------------------------------------------------------------------

    async def count_step_outcome(self, session: AsyncSession, envelope: Envelope) -> None:
        """A step's outcome counts towards its agent; a reused result is neither a run nor spending."""
        payload = envelope.typed()
        if isinstance(payload, StepCompleted) and payload.agent_id and not payload.reused:
            await self._count(session, envelope, payload, final=True, success=True)
        elif isinstance(payload, StepFailed) and payload.agent_id:
            await self._count(session, envelope, payload, final=not payload.will_retry, success=False)

    async def _count(
        self, session: AsyncSession, cause: Envelope, step: StepCompleted | StepFailed, *, final: bool, success: bool
    ) -> None:
        metrics = await repository.lock_agent(session, step.agent_id, cause.workspace_id)
        event = metrics.count(
            final=final,
            success=success,
            duration_ms=step.duration_ms,
            tokens=step.tokens.total,
            cost_usd=step.cost_usd,
        )
        await self._append(
            session,
            event,
            workspace_id=cause.workspace_id,
            aggregate_id=metrics.agent_id,
            expected_version=metrics.version,
            cause=Cause.of(cause),
        )

    # --- assessing and learning ------------------------------------------------------------------

    async def learn_after_run(self, session: AsyncSession, envelope: Envelope) -> None:
        """A finished run of a recipe with auto_learning (the default) is assessed and learned from at once."""
        payload = envelope.typed()
        if not isinstance(payload, ExecutionFinished):
            return
        ws, template_id, execution_id = envelope.workspace_id, payload.recipe_id, payload.execution_id
        execution = await copies.get_execution(session, execution_id)
        if execution is None or not await self._auto_learning(session, ws, template_id, execution["recipe"]):
            return
        cause = Cause.of(envelope)
        await self.assess(session, AssessExecution(ws, template_id, execution_id), cause)
        await self.learn(session, LearnFromExecution(ws, template_id, execution_id), cause)

    async def _auto_learning(self, session: AsyncSession, workspace_id: str, template_id: str, snapshot: Any) -> bool:
        recipe = await copies.get_recipe(session, workspace_id, template_id)
        if recipe is not None and recipe["deleted"]:
            return False
        config = recipe["execution_config"] if recipe is not None else (snapshot or {}).get("execution_config")
        return bool((config or {}).get("auto_learning", True))

    async def _execution(
        self, session: AsyncSession, workspace_id: str, template_id: str, execution_id: str
    ) -> RowMapping:
        """The execution of this recipe in this workspace; ExecutionNotFound otherwise or once it is deleted."""
        row = await copies.find_execution(session, workspace_id, template_id, execution_id)
        if row is None:
            raise ExecutionNotFound(execution_id)
        recipe = await copies.get_recipe(session, workspace_id, template_id)
        if recipe is not None and recipe["deleted"]:
            raise ExecutionNotFound(execution_id)
        return row

    async def assess(self, session: AsyncSession, command: AssessExecution, cause: Cause) -> dict[str, Any]:
        """Assess once: assessing the same execution again returns the stored assessment."""
        ws, eid = command.workspace_id, command.execution_id
        execution = await self._execution(session, ws, command.template_id, eid)
        if (stored := await views.assessment(session, ws, eid)) is not None:
            return stored
        quality = await repository.lock_recipe_quality(session, ws, command.template_id)
        if (stored := await views.assessment(session, ws, eid)) is not None:
            return stored  # assessed by a concurrent writer while we waited for the lock
        event = quality.assess(await copies.execution_record(session, execution))
        await self._append(
            session,
            event,
            workspace_id=ws,
            aggregate_id=quality.stream_id,
            expected_version=quality.version,
            cause=_or_run_correlation(cause, execution),
        )
        assessed = await views.assessment(session, ws, eid)
        assert assessed is not None
        return assessed

    async def learn(self, session: AsyncSession, command: LearnFromExecution, cause: Cause) -> dict[str, Any]:
        """Learn once: learning from the same execution again returns the stored analysis."""
        ws, eid = command.workspace_id, command.execution_id
        execution = await self._execution(session, ws, command.template_id, eid)
        if (stored := await views.analysis(session, ws, eid)) is not None:
            return stored
        quality = await repository.lock_recipe_quality(session, ws, command.template_id)
        if (stored := await views.analysis(session, ws, eid)) is not None:
            return stored
        analyzed_at = utcnow()
        event = quality.learn(await copies.execution_record(session, execution), analyzed_at.isoformat())
        await self._append(
            session,
            event,
            workspace_id=ws,
            aggregate_id=quality.stream_id,
            expected_version=quality.version,
            cause=_or_run_correlation(cause, execution),
            occurred_at=analyzed_at,
        )
        analysed = await views.analysis(session, ws, eid)
        assert analysed is not None
        return analysed


def _or_run_correlation(cause: Cause, execution: RowMapping) -> Cause:
    """Without a correlation id of its own, a write joins the run's."""
    if cause.correlation_id:
        return cause
    return Cause(actor=cause.actor, correlation_id=execution["correlation_id"], causation_id=cause.causation_id)

"""Statistics from other services' events: uses, outcomes, quality, learning and agent metrics.

They change read-model columns only (never a Recipe or Agent event): each runs in the consumer's inbox
transaction, so a redelivered event changes nothing twice.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.adapters.repositories import AgentRepository, ExecutionRepository, RecipeRepository
from sous_events import events as ev
from sous_events.envelope import Envelope


async def on_execution_requested(session: AsyncSession, envelope: Envelope, payload: ev.ExecutionRequested) -> None:
    """A request counts a use of the recipe (once per execution)."""
    previous, changed = await _execution_status(session, envelope, payload.execution_id, payload.template_id, "pending")
    if changed and previous is None:
        await RecipeRepository(session).record_use(envelope.workspace_id, payload.template_id, envelope.occurred_at)


async def on_execution_started(session: AsyncSession, envelope: Envelope, payload: ev.ExecutionStarted) -> None:
    await _execution_status(session, envelope, payload.execution_id, payload.template_id, "running")


async def on_execution_finished(session: AsyncSession, envelope: Envelope, payload: ev.ExecutionFinished) -> None:
    """A finish updates the recipe's success_rate (once per execution)."""
    _, changed = await _execution_status(session, envelope, payload.execution_id, payload.template_id, payload.status)
    if changed:
        await RecipeRepository(session).record_finish(envelope.workspace_id, payload.template_id, payload.status)


async def _execution_status(
    session: AsyncSession, envelope: Envelope, execution_id: str, template_id: str, status: str
) -> tuple[str | None, bool]:
    if not template_id or not status:
        return None, False
    return await ExecutionRepository(session).transition(
        envelope.workspace_id, execution_id or envelope.aggregate_id, template_id, status, envelope.occurred_at
    )


async def on_quality_assessed(session: AsyncSession, envelope: Envelope, payload: ev.QualityAssessed) -> None:
    await RecipeRepository(session).set_quality(envelope.workspace_id, payload.template_id, payload.rolling_score)


async def on_learning_recorded(session: AsyncSession, envelope: Envelope, payload: ev.LearningRecorded) -> None:
    await RecipeRepository(session).set_learning(
        envelope.workspace_id, payload.template_id, payload.learning_data.as_dict()
    )


async def on_agent_metrics(session: AsyncSession, envelope: Envelope, payload: ev.AgentMetricsUpdated) -> None:
    await AgentRepository(session).set_metrics(envelope.workspace_id, payload.agent_id, payload.metrics.as_dict())

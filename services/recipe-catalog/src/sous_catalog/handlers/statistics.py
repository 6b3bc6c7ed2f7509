"""Statistics from other services' events: uses, outcomes, quality, learning and agent metrics.

They change read-model columns only (never a Recipe or Agent event): each runs in the consumer's inbox
transaction, so a redelivered event changes nothing twice.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.adapters.repositories import AgentRepository, ExecutionRepository, RecipeRepository
from sous_events import events as ev
from sous_events.envelope import Envelope


async def on_execution_event(session: AsyncSession, envelope: Envelope) -> None:
    """ExecutionRequested counts a use; ExecutionFinished updates success_rate (pending/running: status)."""
    payload = envelope.payload
    execution_id = str(payload.get("execution_id") or envelope.aggregate_id)
    template_id = str(payload.get("recipe_id") or "")
    status = {"ExecutionRequested": "pending", "ExecutionStarted": "running"}.get(
        envelope.event_type, str(payload.get("status") or "")
    )
    if not template_id or not status:
        return
    previous, changed = await ExecutionRepository(session).transition(
        envelope.workspace_id, execution_id, template_id, status, envelope.occurred_at
    )
    recipes = RecipeRepository(session)
    if envelope.event_type == "ExecutionRequested" and changed and previous is None:
        await recipes.record_use(envelope.workspace_id, template_id, envelope.occurred_at)
    elif envelope.event_type == "ExecutionFinished" and changed:
        await recipes.record_finish(envelope.workspace_id, template_id, status)


async def on_quality_assessed(session: AsyncSession, envelope: Envelope) -> None:
    payload = ev.QualityAssessed.model_validate(envelope.payload)
    await RecipeRepository(session).set_quality(envelope.workspace_id, payload.recipe_id, payload.rolling_score)


async def on_learning_recorded(session: AsyncSession, envelope: Envelope) -> None:
    payload = ev.LearningRecorded.model_validate(envelope.payload)
    await RecipeRepository(session).set_learning(envelope.workspace_id, payload.recipe_id, payload.learning_data)


async def on_agent_metrics(session: AsyncSession, envelope: Envelope) -> None:
    payload = ev.AgentMetricsUpdated.model_validate(envelope.payload)
    await AgentRepository(session).set_metrics(envelope.workspace_id, payload.agent_id, payload.metrics)

"""Statistics from other services' events: uses, outcomes, quality, learning and agent metrics.

They change read-model columns only (never a Recipe or Agent event): each runs in the consumer's inbox
transaction, so a redelivered event changes nothing twice. What a batch's events add to a recipe's counters is
tallied and written once at the batch's end (`flush`, the consumer's after_batch), and so are its analyses of each
recipe, folded into the recipe's learning_data by one statement.

Each handler reads its event through a view of the few fields it uses (`VIEWS`, declared with the
consumer): an ExecutionRequested carries the recipe and its agents, an ExecutionFinished the step results,
none of which the statistics need to validate or rebuild. A LearningRecorded's findings and the agent
metrics are snapshots whose written form is exactly what the producer wrote
(sous_events.contracts.base.Snapshot), so they are stored as they arrived: the agent's metrics whole, the
run's analysis folded into the recipe's learning_data (sous_events.learning_fold).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.adapters.statistics import StatisticsWriter
from sous_events import events as ev
from sous_events.envelope import Envelope, EventPayload


class ExecutionMoved(EventPayload):
    """What ExecutionRequested, ExecutionStarted and ExecutionFinished tell the statistics."""

    execution_id: str
    template_id: str


class ExecutionFinishedOutcome(ExecutionMoved):
    status: str


class QualityScored(EventPayload):
    template_id: str
    rolling_score: float
    counted: bool = True


class LearningOfRecipe(EventPayload):
    template_id: str
    execution_id: str
    analyzed_at: str
    patterns: list[Any] = []
    suggestions: list[Any] = []
    performance_metrics: dict[str, Any] = {}


class AgentMetricsOfAgent(EventPayload):
    agent_id: str
    metrics: dict[str, Any]


VIEWS: dict[type[EventPayload], type[EventPayload]] = {
    ev.ExecutionRequested: ExecutionMoved,
    ev.ExecutionStarted: ExecutionMoved,
    ev.ExecutionFinished: ExecutionFinishedOutcome,
    ev.QualityAssessed: QualityScored,
    ev.LearningRecorded: LearningOfRecipe,
    ev.AgentMetricsUpdated: AgentMetricsOfAgent,
}


async def on_execution_requested(session: AsyncSession, envelope: Envelope, payload: ExecutionMoved) -> None:
    """A request counts a use of the recipe (once per execution)."""
    if payload.template_id:
        execution_id = payload.execution_id or envelope.aggregate_id
        await StatisticsWriter(session).requested(
            envelope.workspace_id, execution_id, payload.template_id, envelope.occurred_at
        )


async def on_execution_started(session: AsyncSession, envelope: Envelope, payload: ExecutionMoved) -> None:
    await _moved(session, envelope, payload, "running")


async def on_execution_finished(session: AsyncSession, envelope: Envelope, payload: ExecutionFinishedOutcome) -> None:
    """A finish updates the recipe's success_rate (once per execution)."""
    await _moved(session, envelope, payload, payload.status)


async def _moved(session: AsyncSession, envelope: Envelope, payload: ExecutionMoved, status: str) -> None:
    if payload.template_id and status:
        execution_id = payload.execution_id or envelope.aggregate_id
        await StatisticsWriter(session).moved(
            envelope.workspace_id, execution_id, payload.template_id, status, envelope.occurred_at
        )


async def on_quality_assessed(session: AsyncSession, envelope: Envelope, payload: QualityScored) -> None:
    if not payload.counted:
        return  # the recipe's rolling score did not move (QualityAssessed.counted)
    StatisticsWriter(session).quality(envelope.workspace_id, payload.template_id, payload.rolling_score)


async def on_learning_recorded(session: AsyncSession, envelope: Envelope, payload: LearningOfRecipe) -> None:
    StatisticsWriter(session).learning(
        envelope.workspace_id,
        payload.template_id,
        execution_id=payload.execution_id,
        analyzed_at=payload.analyzed_at,
        findings=(payload.patterns, payload.suggestions, payload.performance_metrics),
    )


async def on_agent_metrics(session: AsyncSession, envelope: Envelope, payload: AgentMetricsOfAgent) -> None:
    await StatisticsWriter(session).agent_metrics(envelope.workspace_id, payload.agent_id, payload.metrics)


async def flush(session: AsyncSession) -> None:
    """Once a batch's records are handled: what they added to each recipe, written once (in its transaction)."""
    await StatisticsWriter(session).flush()

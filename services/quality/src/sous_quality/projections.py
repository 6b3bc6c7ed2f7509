"""Projections of the quality service's own events into its read models.

`apply` runs in the appending transaction (live) and, unchanged, during `rebuild_read_models`, so a rebuild
from the store gives the same rows. The copies of other services' data (`replicas`) are not rebuilt here:
they come from consumed events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events import jsontext
from sous_events.envelope import Envelope, EventPayload
from sous_events.events import AgentMetricsUpdated, LearningRecorded, QualityAssessed
from sous_events.projection import rebuild_projection
from sous_events.registry import payload_as, payload_of, spec_of
from sous_quality.adapters import copies, repository
from sous_quality.adapters.tables import agent_metrics, analyses, assessments, recipe_quality
from sous_quality.domain import agents
from sous_quality.domain import recipe_quality as recipe_quality_domain
from sous_quality.domain.agents import AgentMetrics

AGGREGATE_TYPES = (recipe_quality_domain.AGGREGATE, agents.AGGREGATE)
LEARNING_RECORDED = spec_of(LearningRecorded).event_type


def models_of(execution: Mapping[str, Any] | None) -> list[str]:
    """The models the execution's agents were configured with, sorted."""
    if execution is None:
        return []
    configured: dict[str, Any] = execution["agents"] or {}
    found = set()
    for agent in configured.values():
        config = (agent or {}).get("model_config") or {}
        if config.get("model_id"):
            found.add(str(config["model_id"]))
    return sorted(found)


class LearningRows(EventPayload):
    """A LearningRecorded as the rows it projects into: its documents as they were written, which is what the
    rows store (reading them as their models, to write them out again, was most of projecting one)."""

    template_id: str
    execution_id: str
    analyzed_at: str
    patterns: list[dict[str, Any]] = []
    suggestions: list[dict[str, Any]] = []
    performance_metrics: dict[str, Any] = {}


async def apply(session: AsyncSession, envelope: Envelope) -> None:
    """Project one of this service's own events into its read models (live and on rebuild)."""
    ws = envelope.workspace_id
    if envelope.event_type == LEARNING_RECORDED:
        learned = payload_as(envelope, LearningRows)
        documents = (
            jsontext.dumps(learned.patterns),
            jsontext.dumps(learned.suggestions),
            jsontext.dumps(learned.performance_metrics),
        )
        await repository.record_learning(
            session,
            ws,
            learned.template_id,
            envelope.aggregate_version,
            execution_id=learned.execution_id,
            analyzed_at=learned.analyzed_at,
            recorded_at=envelope.occurred_at,
            documents=documents,
        )
        return
    payload = payload_of(envelope)
    if isinstance(payload, QualityAssessed):
        execution = await copies.revision_and_agents(session, payload.execution_id)
        revision = execution["revision"] if execution is not None else None
        # The event carries the new rolling score; the count of assessments grows by one (in the statement).
        await repository.record_assessment(
            session,
            execution_id=payload.execution_id,
            workspace_id=ws,
            template_id=payload.template_id,
            assessed_at=envelope.occurred_at,
            quality_score=payload.quality_score,
            rolling_score=payload.rolling_score,
            breakdown=payload.breakdown,
            grade=payload.grade,
            bottlenecks=[bottleneck.as_dict() for bottleneck in payload.bottlenecks],
            recipe_revision=int(revision) if isinstance(revision, int) else None,
            models=models_of(execution),
            counted=payload.counted,
            version=envelope.aggregate_version,
        )
    elif isinstance(payload, AgentMetricsUpdated):
        # The event carries the agent's whole totals: the state it leaves needs nothing read.
        metrics = AgentMetrics(payload.agent_id).applied(payload, envelope.aggregate_version)
        await repository.save_agent(session, metrics, ws)


async def reset(session: AsyncSession) -> None:
    """Empty the read models built from this service's own events (copies of others' events stay)."""
    for table in (assessments, analyses, recipe_quality, agent_metrics):
        await session.execute(delete(table))


async def rebuild_read_models(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Rebuild assessments, analyses, recipe quality and agent metrics from the event store."""
    return await rebuild_projection(sessions, reset=reset, apply=apply, aggregate_types=AGGREGATE_TYPES)

"""Consumers: runners claim requested workflow runs; the quality service's verdicts are kept for stages 2-7."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import events as ev
from sous_events.envelope import Envelope
from sous_executor.entrypoints.consumers import claiming_consumer
from sous_executor.workflows import repository as repo
from sous_executor.workflows.runner import WorkflowRunner
from sous_service.runtime import ConsumerSpec

RUNNERS_GROUP = "executor-workflow-runners"
QUALITY_GROUP = "executor-workflow-quality"


def run_consumer(runner: WorkflowRunner) -> ConsumerSpec:
    async def claim(session: AsyncSession, envelope: Envelope) -> bool:
        # Exactly one instance drives each run from its start.
        return await repo.claim_new_lease(
            session, envelope.aggregate_id, envelope.workspace_id, runner.owner, runner.ttl_s
        )

    return claiming_consumer(RUNNERS_GROUP, ev.WorkflowRunRequested, claim, runner.spawn)


async def record_agent_metrics(session: AsyncSession, envelope: Envelope, payload: ev.AgentMetricsUpdated) -> None:
    await repo.save_agent_metrics(
        session, payload.agent_id, envelope.workspace_id, payload.metrics.as_dict(), envelope.aggregate_version
    )


async def record_quality_signal(
    session: AsyncSession, envelope: Envelope, payload: ev.QualityAssessed | ev.LearningRecorded
) -> None:
    learning = isinstance(payload, ev.LearningRecorded)
    await repo.record_signal(
        session,
        execution_id=payload.execution_id,
        kind="learning" if learning else "quality",
        workspace_id=envelope.workspace_id,
        recipe_id=payload.template_id,
        payload=payload.model_dump(mode="json"),
    )


def quality_consumer() -> ConsumerSpec:
    """The quality service's verdicts the stages read; the executor runs it within its replica group
    (entrypoints/consumers.py), which reads the same topic for the recipes' scores."""
    return ConsumerSpec(
        name=QUALITY_GROUP,
        handlers={
            ev.QualityAssessed: record_quality_signal,
            ev.LearningRecorded: record_quality_signal,
            ev.AgentMetricsUpdated: record_agent_metrics,
        },
    )

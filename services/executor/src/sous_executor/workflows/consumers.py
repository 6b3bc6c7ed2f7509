"""Consumers: runners claim requested workflow runs; the quality service's verdicts are kept for stages 2-7."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import topics
from sous_events.envelope import Envelope
from sous_executor.entrypoints.consumers import claiming_consumer
from sous_executor.workflows import repository as repo
from sous_executor.workflows.runner import WorkflowRunner
from sous_service.runtime import ConsumerSpec

RUNNERS_GROUP = "executor-workflow-runners"
QUALITY_GROUP = "executor-workflow-quality"
QUALITY_EVENTS = {"QualityAssessed", "LearningRecorded", "AgentMetricsUpdated"}


def run_consumer(runner: WorkflowRunner) -> ConsumerSpec:
    async def claim(session: AsyncSession, envelope: Envelope) -> bool:
        # Exactly one instance drives each run from its start.
        return await repo.claim_new_lease(
            session, envelope.aggregate_id, envelope.workspace_id, runner.owner, runner.ttl_s
        )

    return claiming_consumer(RUNNERS_GROUP, topics.EXECUTOR_WORKFLOWS, "WorkflowRunRequested", claim, runner.spawn)


async def record_quality_event(session: AsyncSession, envelope: Envelope) -> None:
    p = envelope.payload
    if envelope.event_type == "AgentMetricsUpdated":
        await repo.save_agent_metrics(
            session, str(p["agent_id"]), envelope.workspace_id, dict(p.get("metrics") or {}), envelope.aggregate_version
        )
        return
    kind = "quality" if envelope.event_type == "QualityAssessed" else "learning"
    await repo.record_signal(
        session,
        execution_id=str(p["execution_id"]),
        kind=kind,
        workspace_id=envelope.workspace_id,
        recipe_id=str(p.get("recipe_id") or ""),
        payload=dict(p),
    )


def quality_consumer() -> ConsumerSpec:
    return ConsumerSpec(
        name=QUALITY_GROUP, topics=[topics.QUALITY], handler=record_quality_event, event_types=QUALITY_EVENTS
    )

"""Consumers: runners claim requested workflow runs; the quality service's verdicts are kept for stages 2-7."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import topics
from sous_events.envelope import Envelope
from sous_executor.workflows import repository as repo
from sous_executor.workflows.runner import WorkflowRunner
from sous_service.runtime import ConsumerSpec

RUNNERS_GROUP = "executor-workflow-runners"
QUALITY_GROUP = "executor-workflow-quality"
QUALITY_EVENTS = {"QualityAssessed", "LearningRecorded", "AgentMetricsUpdated"}


def run_consumer(runner: WorkflowRunner) -> ConsumerSpec:
    claimed: set[str] = set()

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        # The claim commits with the inbox row: exactly one instance drives each run from its start.
        if await repo.claim_new_lease(
            session, envelope.aggregate_id, envelope.workspace_id, runner.owner, runner.ttl_s
        ):
            claimed.add(envelope.aggregate_id)

    async def after_commit(envelope: Envelope) -> None:
        if envelope.aggregate_id in claimed:
            claimed.discard(envelope.aggregate_id)
            runner.spawn(envelope.aggregate_id)

    return ConsumerSpec(
        name=RUNNERS_GROUP,
        topics=[topics.EXECUTOR_WORKFLOWS],
        handler=handle,
        event_types={"WorkflowRunRequested"},
        after_commit=after_commit,
    )


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

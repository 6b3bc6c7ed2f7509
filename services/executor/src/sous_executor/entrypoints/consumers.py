"""Consumers: runners claim requested executions; replicas follow the catalog and the quality scores."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import topics
from sous_events.envelope import Envelope
from sous_executor.adapters.quality_scores import QUALITY_EVENTS, apply_quality_event
from sous_executor.engine.step_engine import StepEngine
from sous_executor.handlers import ExecutorService
from sous_service.runtime import ConsumerSpec

RUNNERS_GROUP = "executor-runners"
REPLICAS_GROUP = "executor-replicas"
CATALOG_EVENTS = {"RecipeCreated", "RecipeUpdated", "RecipeDeleted", "AgentRegistered", "AgentUpdated", "AgentRemoved"}


def runner_consumer(service: ExecutorService, engine: StepEngine) -> ConsumerSpec:
    claimed: set[str] = set()

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        # The claim commits with the inbox row; the offset is committed right after: the run never blocks it.
        # A full instance does not claim: the execution stays pending until a sweeper with room takes it.
        if engine.capacity.holds(envelope.aggregate_id) or not engine.capacity.reserve(envelope.aggregate_id):
            return
        if await service.claim_requested(session, envelope):
            claimed.add(envelope.aggregate_id)
        else:
            engine.capacity.unreserve(envelope.aggregate_id)

    async def after_commit(envelope: Envelope) -> None:
        if envelope.aggregate_id in claimed:
            claimed.discard(envelope.aggregate_id)
            engine.spawn(envelope.aggregate_id)

    return ConsumerSpec(
        name=RUNNERS_GROUP,
        topics=[topics.EXECUTOR_EXECUTIONS],
        handler=handle,
        event_types={"ExecutionRequested"},
        after_commit=after_commit,
    )


def replica_consumer(service: ExecutorService) -> ConsumerSpec:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.event_type in QUALITY_EVENTS:
            await apply_quality_event(session, envelope)
        else:
            await service.apply_catalog_event(session, envelope)

    return ConsumerSpec(
        name=REPLICAS_GROUP,
        topics=[topics.CATALOG_RECIPES, topics.CATALOG_AGENTS, topics.QUALITY],
        handler=handle,
        event_types=CATALOG_EVENTS | QUALITY_EVENTS,
    )

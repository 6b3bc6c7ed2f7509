"""Consumers: runners claim requested executions; replicas follow the catalog and the quality scores."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import events as ev
from sous_events.envelope import Envelope, EventPayload
from sous_executor.adapters.quality_scores import on_quality_assessed
from sous_executor.engine.step_engine import StepEngine
from sous_executor.handlers import ExecutorService
from sous_service.runtime import ConsumerSpec

RUNNERS_GROUP = "executor-runners"
REPLICAS_GROUP = "executor-replicas"


class ClaimedRun(EventPayload):
    """What a claim reads of a requested run: nothing of its payload (the envelope names the run and its
    workspace), so a runner never decodes the recipe, agents and inputs of a run it does not start from here."""


def claiming_consumer(
    name: str,
    requested: type[EventPayload],
    claim: Callable[[AsyncSession, Envelope], Awaitable[bool]],
    spawn: Callable[[str], object],
) -> ConsumerSpec:
    """Claims each requested run in the inbox transaction; starts the claimed ones once that has committed.

    The claim commits with the inbox row and the offset right after: a run never holds up the partition.
    A claimed run loads its stream from the store, so the claim reads only the envelope.
    """
    claimed: set[str] = set()

    async def handle(session: AsyncSession, envelope: Envelope, _: EventPayload) -> None:
        if await claim(session, envelope):
            claimed.add(envelope.aggregate_id)

    async def after_commit(envelope: Envelope) -> None:
        if envelope.aggregate_id in claimed:
            claimed.discard(envelope.aggregate_id)
            spawn(envelope.aggregate_id)

    return ConsumerSpec(
        name=name, handlers={requested: handle}, after_commit=after_commit, views={requested: ClaimedRun}
    )


def runner_consumer(service: ExecutorService, engine: StepEngine) -> ConsumerSpec:
    async def claim(session: AsyncSession, envelope: Envelope) -> bool:
        # A full instance does not claim: the execution stays pending until a sweeper with room takes it.
        execution_id = envelope.aggregate_id
        if engine.capacity.holds(execution_id) or not engine.capacity.reserve(execution_id):
            return False
        if await service.claim_requested(session, envelope):
            return True
        engine.capacity.unreserve(execution_id)
        return False

    return claiming_consumer(RUNNERS_GROUP, ev.ExecutionRequested, claim, engine.spawn)


def replica_consumer(service: ExecutorService) -> ConsumerSpec:
    return ConsumerSpec(
        name=REPLICAS_GROUP,
        handlers={
            ev.RecipeCreated: service.on_recipe_published,
            ev.RecipeUpdated: service.on_recipe_published,
            ev.RecipeDeleted: service.on_recipe_deleted,
            ev.AgentRegistered: service.on_agent_published,
            ev.AgentUpdated: service.on_agent_published,
            ev.AgentRemoved: service.on_agent_removed,
            ev.QualityAssessed: on_quality_assessed,
        },
    )

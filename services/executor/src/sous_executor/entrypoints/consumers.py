"""Consumers: runners claim requested executions; one replica group follows the catalog and the quality
service (the recipes' scores, and the workflows' quality signals and agent metrics)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import events as ev
from sous_events.dispatch import TypedHandler
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
    passes_over: Callable[[bytes | None], bool] | None = None,
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
        name=name,
        handlers={requested: handle},
        after_commit=after_commit,
        views={requested: ClaimedRun},
        passes_over=passes_over,
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

    # A run this instance claimed with its request is passed over before its record is decoded: the request's
    # transaction wrote its lease, so a claim could only find it taken.
    return claiming_consumer(
        RUNNERS_GROUP, ev.ExecutionRequested, claim, engine.spawn, passes_over=engine.claimed_on_accept
    )


def replica_consumer(service: ExecutorService, *joined: ConsumerSpec) -> ConsumerSpec:
    """The copies the executor keeps of other services' events, in one group: with the `joined` specs' (the
    workflows' quality signals), so each record of a topic is fetched, decoded and claimed in the inbox once,
    and a record several copies follow is applied to all of them in one transaction."""
    own = ConsumerSpec(
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
    return joined_specs(REPLICAS_GROUP, own, *joined)


def joined_specs(name: str, *specs: ConsumerSpec) -> ConsumerSpec:
    """One consumer group applying what each of `specs` applies: a payload class several of them handle goes
    to each of their handlers in turn, in the order given, in the record's one transaction.

    A view narrows a payload for every handler of it, so it must be the same for all of them (or none)."""
    chains: dict[type[EventPayload], list[TypedHandler]] = {}
    views: dict[type[EventPayload], set[type[EventPayload] | None]] = {}
    for spec in specs:
        if spec.after_commit is not None or spec.after_batch is not None or spec.passes_over is not None:
            raise ValueError(f"{spec.name} runs after its commit or batch: it needs a group of its own")
        for payload, handler in spec.handlers.items():
            chains.setdefault(payload, []).append(handler)
            views.setdefault(payload, set()).add(spec.views.get(payload))
    narrowed: dict[type[EventPayload], type[EventPayload]] = {}
    for payload, declared in views.items():
        if len(declared) > 1:
            raise ValueError(f"the handlers of {payload.__name__} read it through different views")
        (view,) = declared
        if view is not None:
            narrowed[payload] = view
    return ConsumerSpec(name=name, handlers={p: _in_turn(hs) for p, hs in chains.items()}, views=narrowed)


def _in_turn(handlers: list[TypedHandler]) -> TypedHandler:
    if len(handlers) == 1:
        return handlers[0]

    async def each(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
        for handler in handlers:
            await handler(session, envelope, payload)

    return each

"""Consumed events: one idempotent consumer group `catalog` over the executor, quality and marketplace topics.

The runner inserts the inbox row in the same transaction as the change, so a redelivered event is skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.handlers import CatalogHandlers
from sous_events import topics
from sous_events.envelope import Envelope
from sous_service.runtime import ConsumerSpec

GROUP = "catalog"
CONSUMED = (
    "ExecutionRequested",
    "ExecutionStarted",
    "ExecutionFinished",
    "QualityAssessed",
    "LearningRecorded",
    "AgentMetricsUpdated",
    "RecipeInstalled",
)


def dispatcher(handlers: CatalogHandlers) -> Callable[[AsyncSession, Envelope], Awaitable[None]]:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        kind = envelope.event_type
        if kind in ("ExecutionRequested", "ExecutionStarted", "ExecutionFinished"):
            await handlers.on_execution_event(session, envelope)
        elif kind == "QualityAssessed":
            await handlers.on_quality_assessed(session, envelope)
        elif kind == "LearningRecorded":
            await handlers.on_learning_recorded(session, envelope)
        elif kind == "AgentMetricsUpdated":
            await handlers.on_agent_metrics(session, envelope)
        elif kind == "RecipeInstalled":
            await handlers.on_recipe_installed(session, envelope)

    return handle


def consumer_spec(handlers: CatalogHandlers, group: str = GROUP) -> ConsumerSpec:
    return ConsumerSpec(
        name=group,
        topics=[topics.EXECUTOR_EXECUTIONS, topics.QUALITY, topics.MARKETPLACE],
        handler=dispatcher(handlers),
        event_types=CONSUMED,
    )

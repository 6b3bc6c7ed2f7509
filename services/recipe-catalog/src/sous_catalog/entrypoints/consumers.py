"""Consumed events: one idempotent consumer group `catalog` over the executor, quality and marketplace topics.

The runner inserts the inbox row in the same transaction as the change, so a redelivered event is skipped.
Statistics update read-model columns; RecipeInstalled runs the install handler in a unit of work joined to
that transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.commands import InstallRecipe
from sous_catalog.config import CatalogSettings
from sous_catalog.handlers import CatalogHandlers, unit_of_works
from sous_catalog.handlers import statistics as stats
from sous_events import events as ev
from sous_events import topics
from sous_events.envelope import Envelope
from sous_service.caller import Caller
from sous_service.runtime import ConsumerSpec, ServiceRuntime
from sous_service.unit_of_work import UnitOfWorks

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


def dispatcher(uows: UnitOfWorks, handlers: CatalogHandlers) -> Callable[[AsyncSession, Envelope], Awaitable[None]]:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        kind = envelope.event_type
        if kind in ("ExecutionRequested", "ExecutionStarted", "ExecutionFinished"):
            await stats.on_execution_event(session, envelope)
        elif kind == "QualityAssessed":
            await stats.on_quality_assessed(session, envelope)
        elif kind == "LearningRecorded":
            await stats.on_learning_recorded(session, envelope)
        elif kind == "AgentMetricsUpdated":
            await stats.on_agent_metrics(session, envelope)
        elif kind == "RecipeInstalled":
            installed = ev.RecipeInstalled.model_validate(envelope.payload)
            # The clone is created as the installer, caused by the install.
            caller = Caller.from_event(envelope, user_id=installed.installed_by or None)
            await handlers.install(InstallRecipe(installed=installed), uows.joined(session, caller))

    return handle


def catalog_consumer(settings: CatalogSettings, runtime: ServiceRuntime) -> ConsumerSpec:
    handlers = CatalogHandlers.create(settings.rules())
    return ConsumerSpec(
        name=settings.consumer_group,
        topics=[topics.EXECUTOR_EXECUTIONS, topics.QUALITY, topics.MARKETPLACE],
        handler=dispatcher(unit_of_works(runtime.sessions, runtime.store), handlers),
        event_types=CONSUMED,
    )

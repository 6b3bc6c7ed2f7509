"""Consumed events: one idempotent consumer group `catalog` over the executor, quality and marketplace topics.

The runner inserts the inbox row in the same transaction as the change, so a redelivered event is skipped.
Statistics update read-model columns; RecipeInstalled runs the install handler in a unit of work joined to
that transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.commands import InstallRecipe
from sous_catalog.config import CatalogSettings
from sous_catalog.handlers import CatalogHandlers, unit_of_works
from sous_catalog.handlers import statistics as stats
from sous_events import events as ev
from sous_events.envelope import Envelope
from sous_service.caller import Caller
from sous_service.runtime import ConsumerSpec, ServiceRuntime
from sous_service.unit_of_work import UnitOfWorks


def catalog_consumer(settings: CatalogSettings, runtime: ServiceRuntime) -> ConsumerSpec:
    handlers = CatalogHandlers.create(settings.rules())
    uows: UnitOfWorks = unit_of_works(runtime.sessions, runtime.store)

    async def recipe_installed(session: AsyncSession, envelope: Envelope, installed: ev.RecipeInstalled) -> None:
        # The clone is created as the installer, caused by the install.
        caller = Caller.from_event(envelope, user_id=installed.installed_by or None)
        await handlers.install(InstallRecipe(installed=installed), uows.joined(session, caller))

    return ConsumerSpec(
        name=settings.consumer_group,
        handlers={
            ev.ExecutionRequested: stats.on_execution_requested,
            ev.ExecutionStarted: stats.on_execution_started,
            ev.ExecutionFinished: stats.on_execution_finished,
            ev.QualityAssessed: stats.on_quality_assessed,
            ev.LearningRecorded: stats.on_learning_recorded,
            ev.AgentMetricsUpdated: stats.on_agent_metrics,
            ev.RecipeInstalled: recipe_installed,
        },
        views=stats.VIEWS,
        after_batch=stats.flush,
    )

"""Composition root: the catalog's ServiceDefinition, and its app (settings -> runtime -> handlers -> routes)."""

from __future__ import annotations

from fastapi import FastAPI

from sous_catalog.config import CatalogSettings
from sous_catalog.entrypoints.api import ROUTERS
from sous_catalog.entrypoints.consumers import catalog_consumer
from sous_catalog.entrypoints.dependencies import CatalogServices
from sous_catalog.handlers import CatalogHandlers, unit_of_works
from sous_catalog.projections import rebuild_read_models
from sous_service.db import create_engine, create_session_factory
from sous_service.definition import ServiceDefinition
from sous_service.web import create_service_app


def build_app(settings: CatalogSettings) -> FastAPI:
    runtime = SERVICE.runtime(settings)
    app = create_service_app(
        title="Sous recipe catalog",
        description="Agents and event-sourced recipes: CRUD, versions, history and discovery.",
        internal_secret=settings.internal_secret,
        context_max_age_s=settings.internal_context_max_age_s,
        service_name=SERVICE.name,
        lifespan=runtime.lifespan,
        readiness=runtime.readiness(),
    )
    app.state.catalog = CatalogServices(
        uows=unit_of_works(runtime.sessions, runtime.store, attempts=settings.update_retries),
        handlers=CatalogHandlers.create(settings.rules()),
    )
    app.state.runtime = runtime
    for router in ROUTERS:
        app.include_router(router)
    return app


async def rebuild(settings: CatalogSettings) -> int:
    """Rebuild the recipe and agent read models from the event store; returns the events replayed."""
    engine = create_engine(settings)
    try:
        return await rebuild_read_models(create_session_factory(engine))
    finally:
        await engine.dispose()


SERVICE = ServiceDefinition(
    name="catalog",
    package="sous_catalog",
    settings=CatalogSettings,
    app=build_app,
    consumers=[catalog_consumer],
    rebuild=rebuild,
)

"""Composition root: settings -> runtime (engine, relay, consumers) -> handlers -> FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from sous_catalog.config import CatalogSettings
from sous_catalog.entrypoints.api import ROUTERS, CatalogServices
from sous_catalog.entrypoints.consumers import consumer_spec
from sous_catalog.handlers import CatalogHandlers
from sous_catalog.projections import rebuild_read_models
from sous_service.config import ServiceSettings
from sous_service.db import create_engine, create_session_factory
from sous_service.runtime import ServiceRuntime
from sous_service.web import create_service_app

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def build_app(settings: ServiceSettings) -> FastAPI:
    runtime = ServiceRuntime.create(settings)
    rules = settings.rules() if isinstance(settings, CatalogSettings) else None
    handlers = CatalogHandlers(runtime.store, rules)
    group = settings.consumer_group if isinstance(settings, CatalogSettings) else "catalog"
    runtime.add_consumer(consumer_spec(handlers, group))
    app = create_service_app(
        title="Sous recipe catalog",
        description="Agents and event-sourced recipes: CRUD, versions, history and discovery.",
        internal_secret=settings.internal_secret,
        context_max_age_s=settings.internal_context_max_age_s,
        service_name="catalog",
        lifespan=runtime.lifespan,
        readiness=runtime.readiness(),
    )
    retries = settings.update_retries if isinstance(settings, CatalogSettings) else 3
    app.state.catalog = CatalogServices(sessions=runtime.sessions, handlers=handlers, update_retries=retries)
    app.state.runtime = runtime
    for router in ROUTERS:
        app.include_router(router)
    return app


async def rebuild(settings: ServiceSettings) -> int:
    """Rebuild the recipe and agent read models from the event store; returns the events replayed."""
    engine = create_engine(settings)
    try:
        return await rebuild_read_models(create_session_factory(engine))
    finally:
        await engine.dispose()

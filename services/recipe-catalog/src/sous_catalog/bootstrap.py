"""Composition root: the catalog's ServiceDefinition, and its app (settings -> runtime -> handlers -> routes)."""

from __future__ import annotations

from fastapi import FastAPI

from sous_catalog.adapters.replay_client import ReplayClient
from sous_catalog.config import CatalogSettings
from sous_catalog.entrypoints.api import ROUTERS
from sous_catalog.entrypoints.consumers import catalog_consumer
from sous_catalog.entrypoints.dependencies import CatalogServices
from sous_catalog.handlers import CatalogHandlers, unit_of_works
from sous_catalog.handlers.versions import Promotions
from sous_catalog.projections import rebuild_read_models
from sous_service.definition import ServiceDefinition


def build_app(settings: CatalogSettings) -> FastAPI:
    runtime = SERVICE.runtime(settings)
    app = SERVICE.create_app(
        settings,
        runtime,
        title="Sous recipe catalog",
        description="Agents and event-sourced recipes: CRUD, versions, history and discovery.",
    )
    uows = unit_of_works(runtime.sessions, runtime.store, attempts=settings.update_retries)
    app.state.catalog = CatalogServices(
        uows=uows,
        handlers=CatalogHandlers.create(settings.rules()),
        promotions=Promotions(
            uows=uows,
            replays=ReplayClient(settings.executor_url, settings.quality_url, settings.internal_secret),
            policy=settings.promotion_policy(),
            wait_s=settings.promotion_wait_s,
        ),
    )
    for router in ROUTERS:
        app.include_router(router)
    return app


SERVICE = ServiceDefinition(
    name="catalog",
    package="sous_catalog",
    settings=CatalogSettings,
    app=build_app,
    consumers=[catalog_consumer],
    rebuild=rebuild_read_models,
)

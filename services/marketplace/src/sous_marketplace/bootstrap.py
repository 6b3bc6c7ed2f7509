"""Composition root: the marketplace's ServiceDefinition, and its app (settings -> runtime -> routes)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.projection import rebuild_projection
from sous_marketplace.adapters import projection
from sous_marketplace.config import MarketplaceSettings
from sous_marketplace.entrypoints.api import MarketplaceServices, build_router
from sous_marketplace.entrypoints.consumers import replicas_consumer
from sous_marketplace.handlers import MarketplaceHandlers, unit_of_works
from sous_service.definition import ServiceDefinition


def build_app(settings: MarketplaceSettings) -> FastAPI:
    runtime = SERVICE.runtime(settings)
    app = SERVICE.create_app(
        settings,
        runtime,
        title="Sous marketplace",
        description="Submit recipes, moderate listings, browse the marketplace and install across workspaces.",
    )
    app.state.marketplace = MarketplaceServices(
        uows=unit_of_works(runtime.sessions, runtime.store), handlers=MarketplaceHandlers.from_settings(settings)
    )
    app.include_router(build_router())
    return app


async def rebuild(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Rebuild listings, creator trust and installs from the event store (replicas are kept)."""
    return await rebuild_projection(
        sessions, reset=projection.reset, apply=projection.apply_event, aggregate_types=projection.AGGREGATE_TYPES
    )


SERVICE = ServiceDefinition(
    name="marketplace",
    package="sous_marketplace",
    settings=MarketplaceSettings,
    app=build_app,
    consumers=[replicas_consumer],
    rebuild=rebuild,
)

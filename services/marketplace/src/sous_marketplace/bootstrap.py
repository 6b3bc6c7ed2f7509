"""Composition root: settings -> runtime (engine, relay, consumers) -> FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from sous_events.projection import rebuild_projection
from sous_marketplace.adapters import projection
from sous_marketplace.adapters.quality_client import QualityClient
from sous_marketplace.config import MarketplaceSettings
from sous_marketplace.domain.quality_gate import QualityGate
from sous_marketplace.entrypoints.api import build_router
from sous_marketplace.entrypoints.consumers import replicas_consumer
from sous_marketplace.handlers import Marketplace
from sous_service.config import ServiceSettings
from sous_service.db import create_engine, create_session_factory
from sous_service.runtime import ServiceRuntime
from sous_service.web import create_service_app

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _settings(settings: ServiceSettings) -> MarketplaceSettings:
    if isinstance(settings, MarketplaceSettings):
        return settings
    return MarketplaceSettings.model_validate(settings.model_dump())


def build_app(settings: ServiceSettings) -> FastAPI:
    config = _settings(settings)
    runtime = ServiceRuntime.create(config)
    marketplace = Marketplace(
        sessions=runtime.sessions,
        trusted_threshold=config.trusted_creator_threshold,
        store=runtime.store,
        gate=QualityGate(min_score=config.gate_min_score, min_runs=config.gate_min_runs),
        trend_points=config.score_trend_points,
        quality=QualityClient(config.quality_url, config.internal_secret),
    )
    runtime.add_consumer(replicas_consumer(config.consumer_group, marketplace.follow_quality))
    app = create_service_app(
        title="Sous marketplace",
        description="Submit recipes, moderate listings, browse the marketplace and install across workspaces.",
        internal_secret=config.internal_secret,
        context_max_age_s=config.internal_context_max_age_s,
        service_name="marketplace",
        lifespan=runtime.lifespan,
        readiness=runtime.readiness(),
    )
    app.state.runtime = runtime
    app.state.marketplace = marketplace
    app.include_router(build_router())
    return app


async def rebuild(settings: ServiceSettings) -> int:
    """Rebuild listings, creator trust and installs from the event store (replicas are kept)."""
    engine = create_engine(settings)
    try:
        return await rebuild_projection(
            create_session_factory(engine),
            reset=projection.reset,
            apply=projection.apply_event,
            aggregate_types=projection.AGGREGATE_TYPES,
        )
    finally:
        await engine.dispose()

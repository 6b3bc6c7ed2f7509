"""Composition root: settings -> runtime (engine, relay, consumers) -> FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from sous_events.projection import rebuild_projection
from sous_quality.config import QualitySettings
from sous_quality.entrypoints.api import build_router
from sous_quality.entrypoints.consumers import consumer_spec
from sous_quality.handlers import (
    AGENT_METRICS,
    RECIPE_QUALITY,
    QualityService,
    apply_quality_event,
    reset_quality_models,
)
from sous_service.config import ServiceSettings
from sous_service.db import create_engine, create_session_factory
from sous_service.runtime import ServiceRuntime
from sous_service.web import create_service_app

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _quality_settings(settings: ServiceSettings) -> QualitySettings:
    return settings if isinstance(settings, QualitySettings) else QualitySettings(**settings.model_dump())


def build_app(settings: ServiceSettings) -> FastAPI:
    qs = _quality_settings(settings)
    runtime = ServiceRuntime.create(qs)
    service = QualityService(runtime.store)
    runtime.add_consumer(consumer_spec(service, qs.consumer_group))
    app = create_service_app(
        title="Sous quality",
        description="Quality assessment, learning, suggestions and agent metrics, learned from events.",
        internal_secret=qs.internal_secret,
        context_max_age_s=qs.internal_context_max_age_s,
        service_name="quality",
        lifespan=runtime.lifespan,
        readiness=runtime.readiness(),
    )
    app.state.runtime = runtime
    app.state.sessions = runtime.sessions
    app.state.quality = service
    app.include_router(build_router())
    return app


async def rebuild(settings: ServiceSettings) -> int:
    """Rebuild assessments, analyses, recipe quality and agent metrics from this service's event store."""
    engine = create_engine(settings)
    try:
        return await rebuild_projection(
            create_session_factory(engine),
            reset=reset_quality_models,
            apply=apply_quality_event,
            aggregate_types=[RECIPE_QUALITY, AGENT_METRICS],
        )
    finally:
        await engine.dispose()

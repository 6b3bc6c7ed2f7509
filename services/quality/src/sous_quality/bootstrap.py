"""Composition root: settings -> runtime (engine, relay, consumers) -> FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from sous_quality.config import QualitySettings
from sous_quality.entrypoints.api import build_router
from sous_quality.entrypoints.consumers import consumer_spec
from sous_quality.handlers import QualityHandlers
from sous_quality.projections import rebuild_read_models
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
    handlers = QualityHandlers(runtime.store)
    runtime.add_consumer(consumer_spec(handlers, qs.consumer_group))
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
    app.state.quality = handlers
    app.include_router(build_router())
    return app


async def rebuild(settings: ServiceSettings) -> int:
    """Rebuild assessments, analyses, recipe quality and agent metrics from this service's event store."""
    engine = create_engine(settings)
    try:
        return await rebuild_read_models(create_session_factory(engine))
    finally:
        await engine.dispose()

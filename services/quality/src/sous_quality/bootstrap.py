"""Composition root: the quality service's ServiceDefinition, and its app (settings -> runtime -> routes)."""

from __future__ import annotations

from fastapi import FastAPI

from sous_quality import handlers
from sous_quality.adapters.executor_reads import ExecutionCatchUp
from sous_quality.config import QualitySettings
from sous_quality.entrypoints.agent_metrics import AgentMetricsPublisher
from sous_quality.entrypoints.api import QualityServices, router
from sous_quality.entrypoints.consumers import quality_consumer
from sous_quality.projections import rebuild_read_models
from sous_service.definition import ServiceDefinition
from sous_service.owner_reads import OwnerReads


def build_app(settings: QualitySettings) -> FastAPI:
    runtime = SERVICE.runtime(settings)
    app = SERVICE.create_app(
        settings,
        runtime,
        title="Sous quality",
        description="Quality assessment, learning, suggestions and agent metrics, learned from events.",
    )
    owner = OwnerReads(settings.executor_url, settings.internal_secret, "executor", reader="quality")
    app.state.quality = QualityServices(
        uows=handlers.unit_of_works(runtime.sessions, runtime.store),
        catch_up=ExecutionCatchUp(owner, runtime.sessions, wait_s=settings.execution_catch_up_s),
    )
    publisher = AgentMetricsPublisher(app.state.quality.uows, settings.agent_metrics_window_s)
    runtime.on_start(publisher.start)
    runtime.on_stop(publisher.stop)
    app.include_router(router)
    return app


SERVICE = ServiceDefinition(
    name="quality",
    package="sous_quality",
    settings=QualitySettings,
    app=build_app,
    consumers=[quality_consumer],
    rebuild=rebuild_read_models,
)

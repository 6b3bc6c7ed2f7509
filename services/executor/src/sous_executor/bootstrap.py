"""Composition root: runtime, engine, consumers, sweeper, cron, routes."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.projection import rebuild_projection
from sous_executor.adapters.catalog_client import CatalogClient
from sous_executor.adapters.event_notifications import EventNotifications
from sous_executor.adapters.execution_stream import AGGREGATE
from sous_executor.adapters.quality_scores import QualityScores
from sous_executor.adapters.repositories import project_execution
from sous_executor.adapters.tables import executions
from sous_executor.config import ExecutorSettings
from sous_executor.domain.execution import Execution
from sous_executor.egress import EgressPolicy
from sous_executor.engine.scheduler import CronScheduler
from sous_executor.engine.step_engine import StepEngine
from sous_executor.engine.sweeper import Sweeper
from sous_executor.entrypoints.api import build_router
from sous_executor.entrypoints.consumers import replica_consumer, runner_consumer
from sous_executor.entrypoints.replay_api import build_replay_router
from sous_executor.handlers import ExecutorService
from sous_executor.llm.client import ClientFactory
from sous_executor.observability import executions_probe, takeovers_source
from sous_executor.quotas import refuse_at_commit
from sous_executor.secrets.api import build_secrets_router
from sous_executor.secrets.crypto import Keyring
from sous_executor.secrets.resolver import Credentials
from sous_executor.secrets.store import SecretStore
from sous_executor.tools.builtin import builtin_tools
from sous_executor.tools.composio import composio_tools
from sous_executor.tools.router import ToolRouter
from sous_executor.use_cases.replay import ReplayService
from sous_executor.webhooks.route import build_webhook_router
from sous_executor.workflows.consumers import quality_consumer
from sous_executor.workflows.rebuild import rebuild_workflow_read_models
from sous_executor.workflows.wiring import install_workflows
from sous_service.db import create_engine, create_session_factory
from sous_service.definition import CliCommand, ServiceDefinition
from sous_service.owner_reads import OwnerReads
from sous_service.runtime import ServiceRuntime
from sous_service.web import create_service_app


@dataclass
class Executor:
    settings: ExecutorSettings
    runtime: ServiceRuntime
    engine: StepEngine
    service: ExecutorService
    sweeper: Sweeper
    scheduler: CronScheduler
    router: ToolRouter
    secrets: SecretStore
    credentials: Credentials


def build_tool_router(settings: ExecutorSettings) -> ToolRouter:
    http_policy = EgressPolicy(settings.http_allowlist, block_private=settings.block_private_egress)
    grants = settings.composio_toolkit_map
    router = ToolRouter(
        builtin_tools(http_policy, settings.tool_result_max_chars),
        max_result_chars=settings.tool_result_max_chars,
        toolkit_grants=grants,
    )
    for tool in composio_tools(settings.composio_api_key, grants):
        router.register(tool)
    return router


def build_executor(settings: ExecutorSettings) -> Executor:
    runtime = SERVICE.runtime(settings)
    refuse_at_commit(runtime.engine)
    router = build_tool_router(settings)
    secrets = SecretStore(runtime.sessions, Keyring.from_setting(settings.secrets_kek))
    credentials = Credentials(secrets, settings.env_grant_map)
    engine = StepEngine(
        settings=settings,
        sessions=runtime.sessions,
        store=runtime.store,
        router=router,
        clients=ClientFactory(settings, credentials),
        statements=runtime.statements,
    )
    service = ExecutorService(
        settings=settings,
        sessions=runtime.sessions,
        store=runtime.store,
        catalog=CatalogClient(settings.catalog_url, settings.internal_secret),
        engine=engine,
        quality_scores=QualityScores(
            OwnerReads(settings.quality_url, settings.internal_secret, "quality", reader="executor", timeout_s=2.0)
        ),
    )
    # The workflows' copies of the quality service's verdicts join the replica group: one read of the topic.
    runtime.add_consumer(replica_consumer(service, quality_consumer()))
    runtime.add_consumer(runner_consumer(service, engine))
    sweeper = Sweeper(engine, settings.sweeper_interval_s)
    scheduler = CronScheduler(service, settings.scheduler_interval_s)
    runtime.metrics.add_probe(executions_probe(runtime.engine))
    runtime.metrics.add_source(takeovers_source(sweeper))
    runtime.on_start(sweeper.start)
    runtime.on_start(scheduler.start)
    # Stoppers run in reverse: the engine stops last (releasing its leases) after sweeper and cron.
    runtime.on_stop(engine.stop)
    runtime.on_stop(scheduler.stop)
    runtime.on_stop(sweeper.stop)
    return Executor(settings, runtime, engine, service, sweeper, scheduler, router, secrets, credentials)


def build_app(settings: ExecutorSettings | None = None) -> FastAPI:
    settings = SERVICE.settings_of(settings)
    executor = build_executor(settings)
    app = create_service_app(
        title="Sous executor",
        description="Durable recipe execution with LLM agents and tools.",
        internal_secret=settings.internal_secret,
        context_max_age_s=settings.internal_context_max_age_s,
        service_name=SERVICE.name,
        lifespan=executor.runtime.lifespan,
        readiness=executor.runtime.readiness(),
    )
    app.include_router(build_router(executor.service, executor.router))
    app.include_router(build_replay_router(ReplayService(executor.service)))
    # One LISTEN connection per process feeds every live-event stream it serves.
    notifications = EventNotifications(settings.service_database_url)
    executor.engine.stream.observer = notifications
    executor.runtime.on_start(notifications.start)
    executor.runtime.on_stop(notifications.stop)
    app.state.event_notifications = notifications
    workflows = install_workflows(executor.runtime, executor.service, executor.engine)
    app.include_router(workflows.router)
    app.state.workflows = workflows
    app.include_router(build_webhook_router(executor.service, executor.credentials))
    app.include_router(build_secrets_router(executor.secrets))
    app.state.executor = executor
    return app


async def rewrap_secrets(settings: ExecutorSettings) -> int:
    """Re-wrap every secret's data key with the active key-encryption key (after adding a new one)."""
    engine = create_engine(settings)
    try:
        store = SecretStore(create_session_factory(engine), Keyring.from_setting(settings.secrets_kek))
        return await store.rewrap_all()
    finally:
        await engine.dispose()


async def rebuild_read_models(settings: ExecutorSettings) -> int:
    """Rebuild the executions and workflow read models from the event store."""
    return await SERVICE.rebuild_from_store(settings)


async def _rebuild(sessions: async_sessionmaker[AsyncSession]) -> int:
    folded: dict[str, Execution] = {}

    async def reset(session: AsyncSession) -> None:
        await session.execute(delete(executions))

    async def apply(session: AsyncSession, envelope: object) -> None:
        from sous_events.envelope import Envelope

        assert isinstance(envelope, Envelope)
        execution = folded.setdefault(envelope.aggregate_id, Execution())
        execution.apply(envelope)
        await project_execution(session, execution)

    count = await rebuild_projection(sessions, reset=reset, apply=apply, aggregate_types=[AGGREGATE])
    return count + await rebuild_workflow_read_models(sessions)


def _rewrap_command(settings: ExecutorSettings, _: argparse.Namespace) -> int:
    changed = asyncio.run(rewrap_secrets(settings))
    print(f"re-wrapped {changed} secrets with the active key-encryption key")
    return 0


# The consumers and background workers (runners, replicas, workflow runs, sweeper, cron) share the one
# StepEngine of the process, so build_executor attaches them to the runtime it creates with that engine.
SERVICE = ServiceDefinition(
    name="executor",
    package="sous_executor",
    settings=ExecutorSettings,
    app=build_app,
    rebuild=_rebuild,
    commands=[
        CliCommand(
            name="rewrap-secrets",
            help="re-wrap every secret's data key with the active key-encryption key",
            run=_rewrap_command,
        )
    ],
)
MIGRATIONS_DIR = SERVICE.migrations_dir

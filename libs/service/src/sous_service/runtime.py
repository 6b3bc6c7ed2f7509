"""What every service process runs beside its API: engine, event store, outbox relay, consumers.

A service's bootstrap builds one ServiceRuntime and hands its `lifespan` to FastAPI, so starting the
app starts the relay and the consumers, and stopping it stops them in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sous_events.consumer import AfterCommit, BatchHandler, ConsumerRunner, Handler
from sous_events.dispatch import Dispatch, TypedHandler
from sous_events.envelope import Envelope, EventPayload
from sous_events.kafka import KafkaConfig, broker_is_ready, ensure_topics
from sous_events.outbox import OutboxRelay
from sous_events.store import EventStore
from sous_service.config import ServiceSettings
from sous_service.db import create_engine, create_session_factory, database_is_ready
from sous_service.dlq_api import mount_admin
from sous_service.observability.metrics import MetricsServer, ServiceMetrics
from sous_service.observability.service import (
    consumer_source,
    lag_probe,
    observed_handler,
    outbox_probe,
    relay_source,
    start_metrics_server,
)
from sous_service.statement_pool import StatementPool


def outbox_relay(settings: ServiceSettings, kafka: KafkaConfig) -> OutboxRelay:
    """The service's relay as its settings shape it (not started: nothing connects)."""
    return OutboxRelay(
        name=settings.service_name,
        database_url=settings.service_database_url,
        kafka=kafka,
        keep_sent_s=settings.outbox_keep_sent_s,
        linger_s=settings.outbox_linger_ms / 1000,
    )


def kafka_config(settings: ServiceSettings) -> KafkaConfig:
    return KafkaConfig(
        bootstrap=settings.kafka_bootstrap,
        acks=settings.kafka_acks,
        idempotence=settings.kafka_idempotence,
        send_timeout_s=settings.kafka_send_timeout_s,
        partitions=settings.kafka_partitions,
        replication=settings.kafka_replication,
        client_id=f"sous-{settings.service_name}",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        fetch_min_bytes=settings.kafka_fetch_min_bytes,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )


@dataclass
class ConsumerSpec:
    """A consumer group: the payload classes it handles, each with its handler (topics follow from them)."""

    name: str
    handlers: Mapping[type[EventPayload], TypedHandler]
    after_commit: AfterCommit | None = None
    # A payload class -> the narrower view of it its handler reads (sous_events.dispatch).
    views: Mapping[type[EventPayload], type[EventPayload]] = field(default_factory=dict)
    # Runs in each batch's transaction once its records were handled: what several records add up to is
    # written once (the batch's records and this commit or roll back together).
    after_batch: Callable[[AsyncSession], Awaitable[None]] | None = None
    # A record's key -> whether the group has nothing to do for it: consumed without decoding or inbox row.
    passes_over: Callable[[bytes | None], bool] | None = None

    def dispatch(self) -> Dispatch:
        return Dispatch(self.handlers, self.views)

    @property
    def topics(self) -> list[str]:
        """The topics its payload classes are published on (what the group must be allowed to read)."""
        return self.dispatch().topics


def batch_then(handler: Handler, after_batch: Callable[[AsyncSession], Awaitable[None]]) -> BatchHandler:
    """Each record's handler in order, then `after_batch`, in the batch's one transaction."""

    async def handle(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            await handler(session, envelope)
        await after_batch(session)

    return handle


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    kafka: KafkaConfig
    # Single statements that commit on their own, on the hot paths (see statement_pool.py).
    statements: StatementPool
    store: EventStore = field(default_factory=EventStore)
    relay: OutboxRelay | None = None
    consumers: list[ConsumerRunner] = field(default_factory=list)
    background: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    stoppers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    # Scrape-time probes and in-memory counters of this service (executor: executions per status, ...).
    metrics: ServiceMetrics = field(default_factory=lambda: ServiceMetrics("sous"))
    metrics_server: MetricsServer | None = None

    @classmethod
    def create(cls, settings: ServiceSettings) -> ServiceRuntime:
        engine = create_engine(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            kafka=kafka_config(settings),
            statements=StatementPool(engine, settings.database_pool_size),
            metrics=ServiceMetrics(settings.service_name),
        )

    def add_consumer(self, spec: ConsumerSpec) -> ConsumerRunner:
        dispatch = spec.dispatch()
        handler = observed_handler(self.settings.service_name, spec.name, dispatch)
        runner = ConsumerRunner(
            name=spec.name,
            topics=dispatch.topics,
            handler=handler if spec.after_batch is None else None,
            batch_handler=None if spec.after_batch is None else batch_then(handler, spec.after_batch),
            sessions=self.sessions,
            kafka=self.kafka,
            event_types=dispatch.event_types,
            max_attempts=self.settings.consumer_max_attempts,
            backoff_s=self.settings.consumer_backoff_s,
            after_commit=spec.after_commit,
            passes_over=spec.passes_over,
        )
        self.consumers.append(runner)
        return runner

    def on_start(self, starter: Callable[[], Awaitable[Any]]) -> None:
        """Run after the relay and consumers started (e.g. a sweeper or scheduler)."""
        self.background.append(starter)

    def on_stop(self, stopper: Callable[[], Awaitable[Any]]) -> None:
        self.stoppers.append(stopper)

    async def start(self) -> None:
        name = self.settings.service_name
        self.metrics.add_probe(outbox_probe(name, self.engine))
        self.metrics.add_probe(lag_probe(name, self.consumers))
        self.metrics.add_source(consumer_source(name, self.consumers))
        self.metrics.add_source(relay_source(name, lambda: self.relay))
        settings = self.settings
        self.metrics_server = await start_metrics_server(
            self.metrics, settings.metrics_host or settings.host, settings.metrics_port
        )
        await ensure_topics(self.kafka)
        self.relay = outbox_relay(settings, self.kafka)
        self.relay.start()
        for consumer in self.consumers:
            consumer.start()
        for starter in self.background:
            await starter()

    async def stop(self) -> None:
        for stopper in reversed(self.stoppers):
            await stopper()
        for consumer in self.consumers:
            await consumer.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        self.metrics.close()
        await self.statements.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        # Every service answers the operators' DLQ and parked-outbox API (ops:admin scope only).
        mount_admin(app, self)
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def readiness(self) -> dict[str, Callable[[], Awaitable[bool]]]:
        async def database() -> bool:
            return await database_is_ready(self.engine)

        async def broker() -> bool:
            return await broker_is_ready(self.kafka)

        async def consumers() -> bool:
            # Events published before a consumer joined wait until it does: not ready until every one has.
            return all(consumer.joined.is_set() for consumer in self.consumers)

        return {"database": database, "broker": broker, "consumers": consumers}

"""Observability of a service runtime: consumer spans and metrics, outbox and lag probes, the metrics port."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind
from prometheus_client import Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sous_events.consumer import ConsumerRunner, Handler
from sous_events.envelope import Envelope
from sous_events.failures import is_transient
from sous_events.registry import topic_for
from sous_service.logs import correlation_id_var
from sous_service.observability.metrics import (
    CONSUMER_LAG,
    CONSUMER_PROCESSING,
    CONSUMER_RETRIES,
    CONSUMER_STALLED,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PARKED,
    OUTBOX_PENDING,
    MetricsServer,
    Sample,
    ServiceMetrics,
)
from sous_service.observability.tracing import fail, parent_context, tracer

if TYPE_CHECKING:
    from sous_events.outbox import OutboxRelay


def _topic(envelope: Envelope) -> str:
    try:
        return topic_for(envelope.event_type)
    except KeyError:
        return "unknown"


def observed_handler(service: str, group: str, handler: Handler) -> Handler:
    """The handler inside a CONSUMER span continuing the event's trace (its envelope's `traceparent`), with
    the event's correlation id in the log records, its time and its failures counted per topic."""

    # Per event type: its topic and the processing histogram's child (labels() costs a lock and a lookup).
    by_type: dict[str, tuple[str, Histogram]] = {}

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        known = by_type.get(envelope.event_type)
        if known is None:
            topic = _topic(envelope)
            known = by_type[envelope.event_type] = (topic, CONSUMER_PROCESSING.labels(service, group, topic))
        topic, processing = known
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "messaging.message.id": envelope.event_id,
            "sous.event_type": envelope.event_type,
            "sous.aggregate_id": envelope.aggregate_id,
        }
        token = correlation_id_var.set(envelope.correlation_id or envelope.event_id)
        started = time.perf_counter()
        try:
            with tracer("sous.consumer").start_as_current_span(
                f"{topic} process {envelope.event_type}",
                context=parent_context(envelope.traceparent),
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    await handler(session, envelope)
                except Exception as exc:
                    fail(span, exc)
                    kind = "transient" if is_transient(exc) else "error"
                    CONSUMER_RETRIES.labels(service, group, topic, kind).inc()
                    raise
        finally:
            processing.observe(time.perf_counter() - started)
            correlation_id_var.reset(token)

    return handle


_OUTBOX = text(
    "SELECT count(*) FILTER (WHERE parked_at IS NULL), count(*) FILTER (WHERE parked_at IS NOT NULL), "
    "coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL)), 0) "
    "FROM outbox WHERE sent_at IS NULL"
)


def outbox_probe(service: str, engine: AsyncEngine) -> Any:
    async def probe() -> None:
        async with engine.connect() as conn:
            pending, parked, age = (await conn.execute(_OUTBOX)).one()
        OUTBOX_PENDING.labels(service).set(int(pending))
        OUTBOX_PARKED.labels(service).set(int(parked))
        OUTBOX_OLDEST_AGE.labels(service).set(max(0.0, float(age)))

    return probe


def lag_probe(service: str, consumers: Sequence[ConsumerRunner]) -> Any:
    """Lag per (group, topic) over the partitions each consumer holds: the topic's end (high watermark)
    minus the consumer's position. Records handed to a worker but not yet applied count as taken."""

    async def probe() -> None:
        for runner in consumers:
            lag = dict.fromkeys(runner.topics, 0)
            consumer = getattr(runner, "_consumer", None)  # None between restarts: reported as 0
            if consumer is not None:
                for tp in list(consumer.assignment()):
                    end = consumer.highwater(tp)
                    if end is None:
                        continue
                    position = await consumer.position(tp)
                    lag[tp.topic] = lag.get(tp.topic, 0) + max(0, int(end) - int(position))
            for topic, value in lag.items():
                CONSUMER_LAG.labels(service, runner.name, topic).set(value)
            CONSUMER_STALLED.labels(service, runner.name).set(len(runner.stalled))

    return probe


def consumer_source(service: str, consumers: Sequence[ConsumerRunner]) -> Any:
    def samples() -> Iterable[Sample]:
        for runner in consumers:
            group = runner.name
            dead = dict(runner.dead_lettered_by_topic)
            for topic in sorted({*runner.topics, *dead}):
                yield "sous_dlq_records_total", {"service": service, "group": group, "topic": topic}, dead.get(topic, 0)
            yield (
                "sous_consumer_records_total",
                {"service": service, "group": group, "outcome": "applied"},
                runner.applied,
            )
            yield (
                "sous_consumer_records_total",
                {"service": service, "group": group, "outcome": "duplicate"},
                runner.duplicates,
            )
            yield (
                "sous_consumer_records_total",
                {"service": service, "group": group, "outcome": "passed_over"},
                runner.passed_over,
            )
            yield (
                "sous_consumer_transient_failures_total",
                {"service": service, "group": group},
                runner.transient_failures,
            )

    return samples


def relay_source(service: str, relay: Any) -> Any:
    """`relay` is a callable returning the runtime's current OutboxRelay (or None before start)."""

    def samples() -> Iterable[Sample]:
        current: OutboxRelay | None = relay()
        if current is not None:
            yield "sous_outbox_published_total", {"service": service}, current.published
            yield "sous_outbox_parked_total", {"service": service}, current.parked
            yield "sous_outbox_vacuums_total", {"service": service}, current.vacuums

    return samples


async def start_metrics_server(metrics: ServiceMetrics, host: str, port: int | None) -> MetricsServer | None:
    if port is None:
        return None
    server = MetricsServer(metrics, host, port)
    await server.start()
    return server

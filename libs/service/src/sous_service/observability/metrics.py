"""The metrics every Sous process exports (the contract is in docs/operations.md, "Metrics").

Three kinds of series:
- instruments updated as work happens (HTTP requests, consumer processing, steps, model and tool calls);
- counters kept in memory by the consumer runners, the outbox relay and the sweeper, read at scrape time
  (`LiveCounters`: nothing is counted twice);
- gauges refreshed at scrape time by async probes (consumer lag, the outbox, executions per status).

Every series carries `service`. They are served by `MetricsServer` on a port of their own
(`SOUS_METRICS_PORT`), never on the API port: the gateway's API port is public.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

logger = logging.getLogger("sous.metrics")

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LONG = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

HTTP_REQUESTS = Counter(
    "sous_http_requests_total",
    "HTTP requests answered, by route template and status code",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "sous_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the response body)",
    ["service", "method", "route"],
    buckets=_LATENCY,
)
CONSUMER_PROCESSING = Histogram(
    "sous_consumer_processing_seconds",
    "Time a consumer's handler took for one record, by consumer group and topic",
    ["service", "group", "topic"],
    buckets=_LATENCY,
)
CONSUMER_RETRIES = Counter(
    "sous_consumer_retries_total",
    "Failed handler attempts on a record (retried, or dead-lettered after the last): kind transient or error",
    ["service", "group", "topic", "kind"],
)
CONSUMER_LAG = Gauge(
    "sous_consumer_lag",
    "Records behind the end of the topic on the partitions this process holds (sum over replicas: the group's)",
    ["service", "group", "topic"],
)
CONSUMER_STALLED = Gauge(
    "sous_consumer_stalled_partitions",
    "Partitions held back by a transient failure (database or broker away), retried without limit",
    ["service", "group"],
)
OUTBOX_PENDING = Gauge("sous_outbox_pending", "Outbox rows not yet published (parked rows excluded)", ["service"])
OUTBOX_PARKED = Gauge(
    "sous_outbox_parked", "Outbox rows the broker refused for good, waiting for an operator", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "sous_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet published and not parked (0 when empty)",
    ["service"],
)
EXECUTIONS_IN_STATUS = Gauge(
    "sous_executions_in_status", "Executions per status in the executor's read model", ["service", "status"]
)
STEP_DURATION = Histogram(
    "sous_step_duration_seconds",
    "One step of an execution, from its start to its outcome (retries included)",
    ["service", "outcome"],
    buckets=_LONG,
)
MODEL_DURATION = Histogram(
    "sous_model_request_duration_seconds",
    "Latency of one model call (chat completion)",
    ["service", "model", "outcome"],
    buckets=_LONG,
)
MODEL_TOKENS = Counter(
    "sous_model_tokens_total",
    "Tokens reported by the model, by kind (prompt, completion)",
    ["service", "model", "kind"],
)
MODEL_COST = Counter(
    "sous_model_cost_usd_total", "Cost of model calls in US dollars (price table)", ["service", "model"]
)
TOOL_DURATION = Histogram(
    "sous_tool_call_duration_seconds", "One tool call by an agent", ["service", "tool", "outcome"], buckets=_LONG
)

# ---------------------------------------------------------------- counters kept elsewhere, read at scrape

# (name, help) of the counters LiveCounters sources may report; values are totals since the process started.
LIVE_COUNTERS: dict[str, str] = {
    "sous_dlq_records_total": "Records a consumer sent to <topic>.dlq (topic: the source topic)",
    "sous_consumer_records_total": "Records a consumer applied (outcome applied), skipped as duplicates (duplicate) "
    "or passed over undecoded because its own instance already did their work (passed_over)",
    "sous_consumer_transient_failures_total": "Transient failures (database or broker away) a consumer retried",
    "sous_outbox_published_total": "Outbox rows this process's relay published",
    "sous_outbox_parked_total": "Outbox rows this process's relay parked (refused by the broker for good)",
    "sous_outbox_vacuums_total": "Vacuums of the outbox this process's relay ran, every so many rows it deleted",
    "sous_lease_takeovers_total": "Executions this executor took over after their owner's lease expired",
}

Sample = tuple[str, dict[str, str], float]
Source = Callable[[], Iterable[Sample]]


class LiveCounters(Collector):
    """One collector for the whole process: each source reports (counter name, labels, total)."""

    def __init__(self) -> None:
        self.sources: list[Source] = []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, tuple[CounterMetricFamily, list[str]]] = {}
        for source in list(self.sources):
            try:
                samples = list(source())
            except Exception:  # a source must never break the scrape
                logger.exception("metrics source failed")
                continue
            for name, labels, value in samples:
                if name not in families:
                    names = sorted(labels)
                    families[name] = (CounterMetricFamily(name, LIVE_COUNTERS[name], labels=names), names)
                family, names = families[name]
                family.add_metric([labels.get(k, "") for k in names], value)
        for family, _ in families.values():
            yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())


LIVE = LiveCounters()
REGISTRY.register(LIVE)

Probe = Callable[[], Awaitable[None]]


@dataclass
class ServiceMetrics:
    """What one service adds at scrape time: sources of live counters and async probes for gauges."""

    service: str
    probes: list[Probe] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    probe_timeout_s: float = 5.0

    def add_probe(self, probe: Probe) -> None:
        self.probes.append(probe)

    def add_source(self, source: Source) -> None:
        self.sources.append(source)
        LIVE.sources.append(source)

    def close(self) -> None:
        for source in self.sources:
            with contextlib.suppress(ValueError):
                LIVE.sources.remove(source)
        self.sources.clear()

    async def refresh(self) -> None:
        for probe in self.probes:
            try:
                await asyncio.wait_for(probe(), self.probe_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database that is away leaves the last values; the scrape goes on
                logger.warning("metrics probe of %s failed: %s", self.service, exc)

    async def exposition(self) -> bytes:
        await self.refresh()
        return generate_latest(REGISTRY)


class MetricsServer:
    """`GET /metrics` on its own port, nothing else: a minimal HTTP/1.1 server on the service's event loop
    (so probes can use its database engine), separate from the API and its middleware."""

    def __init__(self, metrics: ServiceMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets and not self.port:
            self.port = int(sockets[0].getsockname()[1])
        logger.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, body, ctype = "405 Method Not Allowed", b"method not allowed\n", "text/plain"
            elif path != "/metrics":
                status, body, ctype = "404 Not Found", b"not found: metrics are at /metrics\n", "text/plain"
            else:
                status, body, ctype = "200 OK", await self.metrics.exposition(), CONTENT_TYPE_LATEST
            headers = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(headers.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

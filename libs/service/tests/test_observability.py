"""Units of the observability layer: the metrics listener, request metrics by route template, counters read
at scrape time, trace context in events, tracing off by default."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from sous_events.events.catalog import AgentRemoved
from sous_events.registry import make_event
from sous_events.tracing import current_traceparent, parent_context, span_context_of
from sous_service.observability.http import ObservabilityMiddleware
from sous_service.observability.metrics import HTTP_REQUESTS, MetricsServer, ServiceMetrics
from sous_service.observability.tracing import configure_tracing, exporters_from_env

pytestmark = pytest.mark.unit


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    raise AssertionError(f"{name} {labels} not exposed")


async def test_the_metrics_listener_serves_only_metrics_with_probes_and_live_counters() -> None:
    metrics = ServiceMetrics("unit-svc")
    probed = asyncio.Event()

    async def probe() -> None:
        probed.set()

    counted = {"n": 3}
    metrics.add_probe(probe)
    metrics.add_source(lambda: [("sous_lease_takeovers_total", {"service": "unit-svc"}, counted["n"])])
    server = MetricsServer(metrics, "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            scraped = await client.get("/metrics")
            assert scraped.status_code == 200 and probed.is_set()
            assert value(scraped.text, "sous_lease_takeovers_total", service="unit-svc") == 3
            counted["n"] = 5
            assert value((await client.get("/metrics")).text, "sous_lease_takeovers_total", service="unit-svc") == 5
            assert (await client.get("/")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
    finally:
        await server.stop()
        metrics.close()


async def test_requests_are_counted_by_route_template_and_continue_the_callers_trace() -> None:
    app = FastAPI()
    seen: dict[str, str] = {}

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        seen["traceparent"] = current_traceparent()
        return {"id": thing_id}

    app.add_middleware(ObservabilityMiddleware, service="unit-http")
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    labels = ("unit-http", "GET", "/things/{thing_id}", "200")
    before = HTTP_REQUESTS.labels(*labels)._value.get()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/things/42")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    assert HTTP_REQUESTS.labels(*labels)._value.get() == before + 1
    assert HTTP_REQUESTS.labels("unit-http", "GET", "unmatched", "404")._value.get() >= 1
    # Without an SDK the API's spans are no-ops: nothing is propagated, nothing is recorded.
    assert seen["traceparent"] == ""


def test_an_event_made_inside_a_span_carries_its_traceparent() -> None:
    provider = TracerProvider()
    with provider.get_tracer("unit").start_as_current_span("request") as span:
        event = make_event(
            AgentRemoved(agent_id="a1"), producer="t", workspace_id="w", aggregate_id="a1", aggregate_version=1
        )
    context = span.get_span_context()
    assert event.traceparent == f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    outside = make_event(
        AgentRemoved(agent_id="a1"), producer="t", workspace_id="w", aggregate_id="a1", aggregate_version=1
    )
    assert outside.traceparent == ""
    remote = span_context_of(event.traceparent)
    assert remote is not None and remote.trace_id == context.trace_id and remote.is_remote
    assert parent_context("garbage") is None and parent_context(f"00-{'0' * 32}-{'1' * 16}-01") is None


def test_tracing_is_off_unless_an_exporter_is_named() -> None:
    assert exporters_from_env({}) == []
    assert exporters_from_env({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert exporters_from_env({"OTEL_TRACES_EXPORTER": "otlp,console"}) == ["otlp", "console"]
    assert exporters_from_env({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) == []
    assert configure_tracing("unit", {}) is False


def test_spans_export_to_a_file_one_json_object_a_line(tmp_path) -> None:
    from sous_service.observability.tracing import _console_exporter

    exporter = _console_exporter("svc", {"SOUS_TRACES_FILE": str(tmp_path / "spans-{service}.jsonl")})
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("unit").start_as_current_span("one"):
        pass
    provider.shutdown()
    lines = (tmp_path / "spans-svc.jsonl").read_text().splitlines()
    assert len(lines) == 1 and '"name": "one"' in lines[0]


def test_a_log_line_is_one_json_object_even_with_text_the_fast_codec_refuses() -> None:
    import json
    import logging

    from sous_service.logs import JsonFormatter

    formatter = JsonFormatter("unit")
    for message in ("GET /api/x 200 1.0ms", "bad \ud800 text", "ünïcode"):
        record = logging.LogRecord("sous.access", logging.INFO, __file__, 1, message, None, None)
        record.status = 200
        entry = json.loads(formatter.format(record))
        assert (entry["message"], entry["status"], entry["service"]) == (message, 200, "unit")

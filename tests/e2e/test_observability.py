"""Observability of the running system: one execution through the gateway is one trace across processes
(gateway, executor, catalog, the Kafka hop, the model call), and every service's /metrics, on its own
metrics port, exposes the contract's metrics and they move when work happens.

A stack of its own with tracing on: each service exports its spans with the console exporter into a file
of its own (SOUS_TRACES_FILE, one JSON object a line), which the test reads back.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sous_gateway.tokens import mint_development_token
from sous_local.stack import Stack

from .conftest import Api, create_agent, create_recipe, eventually, wait_for_recipe_at_executor

pytestmark = pytest.mark.e2e

SERVICES = ("gateway", "catalog", "executor", "quality", "marketplace")


@pytest.fixture(scope="module")
def traced_stack() -> Iterator[tuple[Stack, Path]]:
    state = Path(tempfile.mkdtemp(prefix="sous-e2e-otel-"))
    broker = "kafka" if os.environ.get("SOUS_TEST_BROKER") == "kafka" else "embedded"
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "SOUS_TRACES_FILE": str(state / "spans-{service}.jsonl"),
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "SOUS_RATE_LIMIT_PER_MINUTE": "100000",
        "SOUS_RATE_LIMIT_BURST": "10000",
    }
    for variable in ("OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED", "OTEL_RESOURCE_ATTRIBUTES"):
        os.environ.pop(variable, None)
    running = Stack(state, broker=broker, env=env, durable_postgres=False, ports="auto", quiet=True)
    running.start()
    try:
        yield running, state
    finally:
        running.stop()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
async def api(traced_stack: tuple[Stack, Path]) -> Any:
    stack, _ = traced_stack
    workspace = f"ws-{uuid.uuid4().hex[:8]}"
    token = mint_development_token(
        f"user-{uuid.uuid4().hex[:6]}", [workspace], roles=("admin",), secret=stack.jwt_secret
    )
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield Api(client, token, workspace)


def one_step(agent_id: str) -> list[dict[str, Any]]:
    return [{"step_id": "write", "order": 1, "agent_id": agent_id, "prompt_template": "Write about {input.topic}"}]


async def run_to_end(api: Api, template_id: str, topic: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    await wait_for_recipe_at_executor(api, template_id)
    started = await api.ok(
        "POST",
        f"/api/workflow-recipes/{template_id}/execute",
        202,
        json={"input_data": {"topic": topic}},
        headers=headers or {},
    )
    execution_id = started["recipe_execution_id"]

    async def finished() -> dict[str, Any] | None:
        status = await api.ok("GET", f"/api/workflow-recipes/{template_id}/executions/{execution_id}")
        return status if status["status"] in ("completed", "failed", "cancelled") else None

    return await eventually(finished, timeout_s=90, what=f"execution {execution_id} to finish")  # type: ignore[no-any-return]


# ---------------------------------------------------------------- traces


def spans_of(state: Path, service: str, trace_id: str) -> list[dict[str, Any]]:
    path = state / f"spans-{service}.jsonl"
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        if line.strip():
            span = json.loads(line)
            if span["context"]["trace_id"] == f"0x{trace_id}":
                found.append(span)
    return found


def descends(span: dict[str, Any], ancestor: dict[str, Any], spans: list[dict[str, Any]]) -> bool:
    """`ancestor` is on `span`'s parent chain (FastAPI's own operation spans may sit in between)."""
    by_id = {s["context"]["span_id"]: s for s in spans}
    parent = span["parent_id"]
    while parent is not None:
        if parent == ancestor["context"]["span_id"]:
            return True
        parent = by_id[parent]["parent_id"] if parent in by_id else None
    return False


def ours(span: dict[str, Any], service: str) -> bool:
    """A request span of Sous's middleware (FastAPI's own server span is its child)."""
    return bool(span["attributes"].get("sous.service") == service)


def named(spans: list[dict[str, Any]], kind: str, predicate: Any) -> list[dict[str, Any]]:
    return [s for s in spans if s["kind"] == f"SpanKind.{kind}" and predicate(s)]


async def test_one_execution_through_the_gateway_is_one_trace_across_the_services(traced_stack, api):
    _, state = traced_stack
    agent = await create_agent(api)
    recipe = await create_recipe(
        api,
        one_step(agent["id"]),
        inputs={"topic": {"type": "string", "required": True}},
        execution_config={"auto_learning": False},
    )
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{caller_span}-01"
    result = await run_to_end(api, recipe["template_id"], "focaccia", headers={"traceparent": traceparent})
    assert result["status"] == "completed", result

    async def whole_trace() -> dict[str, list[dict[str, Any]]] | None:
        spans = {service: spans_of(state, service, trace_id) for service in ("gateway", "executor", "catalog")}
        executor = spans["executor"]
        ready = (
            spans["gateway"]
            and named(spans["catalog"], "CONSUMER", lambda s: "ExecutionRequested" in s["name"])
            and named(executor, "CLIENT", lambda s: s["name"].startswith("chat "))
            and [s for s in executor if s["name"] == "execution run"]
        )
        return spans if ready else None

    spans = await eventually(whole_trace, timeout_s=60, what="the execution's spans in every service")
    gateway, executor, catalog = spans["gateway"], spans["executor"], spans["catalog"]
    for service, found in spans.items():
        assert {s["resource"]["attributes"]["service.name"] for s in found} == {f"sous-{service}"}

    # The gateway continues the caller's trace; the executor's request span is the gateway span's child
    # (the recorded span id is propagated, not replaced).
    [entry] = named(
        gateway, "SERVER", lambda s: ours(s, "gateway") and s["attributes"]["http.route"].endswith("/execute")
    )
    assert entry["parent_id"] == f"0x{caller_span}"
    assert entry["attributes"]["http.response.status_code"] == 202
    [request] = named(
        executor, "SERVER", lambda s: ours(s, "executor") and s["attributes"]["http.route"].endswith("/execute")
    )
    assert request["parent_id"] == entry["context"]["span_id"]

    # The Kafka hop: ExecutionRequested carries the request span's traceparent; the catalog's copy continues it.
    copies = named(catalog, "CONSUMER", lambda s: "ExecutionRequested" in s["name"])
    assert copies and len({s["parent_id"] for s in copies}) == 1  # the one producing span
    assert copies[0]["attributes"]["messaging.destination.name"] == "sous.executor.executions.v1"
    # The instance that accepted the run claimed it in the request's transaction: its runner group passes the
    # record over, and the run continues the same producing span.
    runners = named(
        executor, "CONSUMER", lambda s: s["attributes"]["messaging.consumer.group.name"] == "executor-runners"
    )
    assert runners == []

    # The engine: the run continues the request's trace, a span per step, the model call a CLIENT span in it.
    [run] = [s for s in executor if s["name"] == "execution run"]
    assert run["parent_id"] == copies[0]["parent_id"] and descends(run, request, executor)
    [step] = [s for s in executor if s["name"] == "step write"]
    assert step["parent_id"] == run["context"]["span_id"]
    chats = named(executor, "CLIENT", lambda s: s["name"].startswith("chat "))
    assert chats and all(c["parent_id"] == step["context"]["span_id"] for c in chats)
    assert chats[0]["attributes"]["gen_ai.usage.output_tokens"] > 0


# ---------------------------------------------------------------- metrics


def scrape(stack: Stack, service: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(stack.metrics_urls[service], timeout=10)
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of a metric's samples carrying these labels (route_suffix: a route template ending so)."""
    suffix = labels.pop("route_suffix", "")
    wanted = set(labels.items())
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and wanted <= set(ls) and dict(ls).get("route", "").endswith(suffix)
    )


def names(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[str]:
    return {name for name, _ in samples}


async def test_every_service_exposes_the_metrics_and_they_move_with_a_run(traced_stack, api):
    stack, _ = traced_stack
    agent = await create_agent(api)
    recipe = await create_recipe(
        api,
        one_step(agent["id"]),
        inputs={"topic": {"type": "string", "required": True}},
        execution_config={"auto_learning": False},
    )
    before = {service: scrape(stack, service) for service in SERVICES}
    result = await run_to_end(api, recipe["template_id"], "brioche")
    assert result["status"] == "completed", result

    for service in SERVICES:
        exposed = names(scrape(stack, service))
        assert {"sous_http_requests_total", "sous_http_request_duration_seconds_count"} <= exposed, service
        if service != "gateway":
            assert {
                "sous_outbox_pending",
                "sous_outbox_oldest_age_seconds",
                "sous_outbox_parked",
                "sous_consumer_lag",
                "sous_consumer_stalled_partitions",
                "sous_dlq_records_total",
                "sous_consumer_records_total",
            } <= exposed, service

    async def moved() -> bool:
        gateway, executor, catalog = (scrape(stack, s) for s in ("gateway", "executor", "catalog"))
        execute = {"method": "POST", "route_suffix": "/execute"}
        checks = [
            total(gateway, "sous_http_requests_total", service="gateway", status="202", **execute)
            > total(before["gateway"], "sous_http_requests_total", service="gateway", status="202", **execute),
            total(executor, "sous_http_requests_total", service="executor", status="202", **execute)
            > total(before["executor"], "sous_http_requests_total", service="executor", status="202", **execute),
            # Claimed on accept: the runner group passes the request over (outcome passed_over).
            total(executor, "sous_consumer_records_total", group="executor-runners", outcome="passed_over")
            > total(before["executor"], "sous_consumer_records_total", group="executor-runners", outcome="passed_over"),
            total(catalog, "sous_consumer_processing_seconds_count", group="catalog")
            > total(before["catalog"], "sous_consumer_processing_seconds_count", group="catalog"),
            total(executor, "sous_executions_in_status", status="completed")
            > total(before["executor"], "sous_executions_in_status", status="completed"),
            total(executor, "sous_step_duration_seconds_count", outcome="completed")
            > total(before["executor"], "sous_step_duration_seconds_count", outcome="completed"),
            total(executor, "sous_model_request_duration_seconds_count", outcome="ok")
            > total(before["executor"], "sous_model_request_duration_seconds_count", outcome="ok"),
            total(executor, "sous_model_tokens_total", kind="completion")
            > total(before["executor"], "sous_model_tokens_total", kind="completion"),
            total(executor, "sous_outbox_published_total") > total(before["executor"], "sous_outbox_published_total"),
        ]
        return all(checks)

    await eventually(moved, timeout_s=30, what="the run's counters to move")
    executor = scrape(stack, "executor")
    assert total(executor, "sous_outbox_oldest_age_seconds", service="executor") >= 0
    assert ("sous_executions_in_status", frozenset({("service", "executor"), ("status", "pending")})) in executor


async def test_the_gateway_does_not_serve_metrics_on_its_public_port(traced_stack, api):
    stack, _ = traced_stack
    response = await api.client.get("/metrics")
    assert response.status_code == 404
    assert "sous_http_requests_total" not in response.text
    assert stack.metrics_ports["gateway"] != stack.ports["gateway"]

"""The executor's spans and metrics: a span per run (continuing the trace of its ExecutionRequested), a
span per step, CLIENT spans for model and tool calls; step, model and tool metrics; executions per status
and lease takeovers at scrape time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_executor.llm.completion import Completion, create_completion
from sous_executor.llm.pricing import price_of
from sous_service.logs import correlation_id_var
from sous_service.observability.metrics import (
    EXECUTIONS_IN_STATUS,
    MODEL_COST,
    MODEL_DURATION,
    MODEL_TOKENS,
    STEP_DURATION,
    TOOL_DURATION,
    Sample,
)
from sous_service.observability.tracing import client_span, fail, parent_context, tracer

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from sous_executor.engine.sweeper import Sweeper

SERVICE = "executor"
Outcome = TypeVar("Outcome", bound=str)
STATUSES = ("pending", "running", "completed", "failed", "cancelled")


@contextlib.contextmanager
def run_span(execution_id: str, traceparent: str, correlation_id: str) -> Iterator[None]:
    """The run of an execution, child of the span that requested it (the request's traceparent travels in
    the ExecutionRequested envelope, so a run resumed by another instance joins the same trace)."""
    token = correlation_id_var.set(correlation_id or execution_id)
    try:
        with tracer("sous.executor").start_as_current_span(
            "execution run",
            context=parent_context(traceparent),
            attributes={"sous.execution_id": execution_id},
        ):
            yield
    finally:
        correlation_id_var.reset(token)


async def traced_step(step_id: str, attempt: int, running: Awaitable[Outcome]) -> Outcome:
    """A step's span and duration metric around its run (attempts and retries included)."""
    started = time.perf_counter()
    label = "interrupted"
    with tracer("sous.executor").start_as_current_span(
        f"step {step_id}",
        attributes={"sous.step_id": step_id, "sous.attempt": attempt},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            outcome = await running
            label = str(outcome)
            span.set_attribute("sous.outcome", label)
            return outcome
        except BaseException as exc:
            fail(span, exc)
            raise
        finally:
            STEP_DURATION.labels(SERVICE, label).observe(time.perf_counter() - started)


def model_label(prices: Mapping[str, Mapping[str, float]], model: str) -> str:
    """Models named in the price table, else "unpriced": agents choose model names, labels stay bounded."""
    return model[:100] if price_of(prices, model) is not None else "unpriced"


async def observed_completion(
    client: AsyncOpenAI, body: Mapping[str, Any], prices: Mapping[str, Mapping[str, float]]
) -> Completion:
    """One chat completion in a CLIENT span, its latency and token counts recorded."""
    model = str(body.get("model") or "")
    label = model_label(prices, model)
    started = time.perf_counter()
    outcome = "error"
    with client_span(
        f"chat {model[:100]}", {"gen_ai.operation.name": "chat", "gen_ai.request.model": model[:200]}
    ) as span:
        try:
            response = await create_completion(client, body)
            outcome = "ok"
        finally:
            MODEL_DURATION.labels(SERVICE, label, outcome).observe(time.perf_counter() - started)
        usage = response.usage
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
            MODEL_TOKENS.labels(SERVICE, label, "prompt").inc(usage.prompt_tokens)
            MODEL_TOKENS.labels(SERVICE, label, "completion").inc(usage.completion_tokens)
        return response


def observe_model_cost(prices: Mapping[str, Mapping[str, float]], model: str, cost: float) -> None:
    if cost > 0:
        MODEL_COST.labels(SERVICE, model_label(prices, model)).inc(cost)


async def observed_tool(name: str, known: bool, calling: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """One tool call in a CLIENT span; its outcome is the record's (ok, error) or refused. Names the model
    made up are labelled "unknown": the model chooses them, labels stay bounded."""
    started = time.perf_counter()
    outcome = "refused"
    label = name[:100] if known else "unknown"
    with client_span(f"tool {label}", {"sous.tool": label}) as span:
        try:
            record = await calling
            outcome = "error" if record.get("error") else "ok"
            span.set_attribute("sous.outcome", outcome)
            return record
        finally:
            TOOL_DURATION.labels(SERVICE, label, outcome).observe(time.perf_counter() - started)


_BY_STATUS = text("SELECT status, count(*) FROM executions GROUP BY status")


def executions_probe(engine: AsyncEngine) -> Any:
    async def probe() -> None:
        async with engine.connect() as conn:
            counts = {str(status): int(n) for status, n in (await conn.execute(_BY_STATUS)).all()}
        for status in {*STATUSES, *counts}:
            EXECUTIONS_IN_STATUS.labels(SERVICE, status).set(counts.get(status, 0))

    return probe


def takeovers_source(sweeper: Sweeper) -> Any:
    def samples() -> Iterable[Sample]:
        yield "sous_lease_takeovers_total", {"service": SERVICE}, sweeper.resumed

    return samples

"""Starting a run and following it: one line per step transition from the execution's event stream."""

from __future__ import annotations

import time
import uuid
from typing import Any, TextIO
from urllib.parse import quote

from sous_local.client.http import ClientError, Gateway
from sous_local.client.output import duration

RECIPES = "/api/workflow-recipes"


def quote_segment(value: str) -> str:
    """One path segment, with every reserved character escaped."""
    return quote(value, safe="")


class Progress:
    """Turns an execution's events into one line per step transition."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.status = ""
        self.finished: dict[str, Any] = {}

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def handle(self, envelope: dict[str, Any]) -> None:
        kind = envelope.get("event_type", "")
        p: dict[str, Any] = envelope.get("payload") or {}
        step = p.get("step_id", "")
        if kind == "ExecutionRequested":
            for reused in p.get("reused_results") or []:
                self.say(f"  {reused.get('step_id', ''):<16} reused from {p.get('rerun_of')}")
        elif kind == "ExecutionStarted":
            self.say(f"  running ({p.get('total_steps', '?')} steps)")
        elif kind == "StepStarted":
            self.say(
                f"  {step:<16} started (attempt {p.get('attempt', 1)}, {p.get('agent_name') or p.get('agent_id')})"
            )
        elif kind == "StepCompleted":
            tokens = (p.get("tokens") or {}).get("total", 0)
            tools = ", ".join(c.get("name", "") for c in p.get("tool_calls") or [])
            extra = f", tools: {tools}" if tools else ""
            self.say(f"  {step:<16} completed in {duration(p.get('duration_ms'))}, {tokens} tokens{extra}")
        elif kind == "StepFailed":
            retry = " (will retry)" if p.get("will_retry") else ""
            self.say(f"  {step:<16} failed on attempt {p.get('attempt', 1)}: {p.get('error')}{retry}")
        elif kind == "StepRetryScheduled":
            self.say(f"  {step:<16} retry {p.get('next_attempt')} in {float(p.get('delay_s') or 0):.1f} s")
        elif kind == "StepSkipped":
            self.say(f"  {step:<16} skipped: {p.get('reason', '')}")
        elif kind == "ExecutionCancelRequested":
            self.say("  cancellation requested")
        elif kind == "ExecutionFinished":
            self.status = str(p.get("status", ""))
            self.finished = p
            totals = p.get("totals") or {}
            self.say(
                f"{self.status}: {totals.get('steps_completed', 0)}/{totals.get('steps_total', 0)} steps, "
                f"{duration(totals.get('duration_ms'))}, {totals.get('tokens', 0)} tokens, "
                f"${float(totals.get('cost_usd') or 0):.6f}"
            )
            if p.get("error"):
                self.say(f"  error: {p['error']}")


def follow(gateway: Gateway, recipe_id: str, execution_id: str, out: TextIO) -> str:
    """Prints the execution's progress from its event stream; returns its final status."""
    progress = Progress(out)
    path = f"{RECIPES}/{quote_segment(recipe_id)}/executions/{quote_segment(execution_id)}/events"
    for event in gateway.events(path):
        if isinstance(event.data, dict):
            progress.handle(event.data)
        if progress.status:
            break
    if not progress.status:  # the stream ended without the finish event: ask once
        status = gateway.get(f"{RECIPES}/{quote_segment(recipe_id)}/executions/{quote_segment(execution_id)}")
        progress.status = str(status.get("status", "unknown"))
        progress.say(f"{progress.status}")
    return progress.status


# Answers after which the request may not have been applied, or was answered by a gateway that lost its upstream.
RETRIED_STATUSES = (0, 502, 503, 504)


def start_execution(gateway: Gateway, recipe_id: str, inputs: dict[str, Any], wait_s: float = 20.0) -> Any:
    """POST …/execute, retried under one Idempotency-Key: a lost answer is asked again without starting (and
    paying for) a second execution. A recipe created a moment ago may not have reached the executor yet: 404s
    are retried too."""
    deadline = time.monotonic() + wait_s
    key = {"Idempotency-Key": f"sous-cli-{uuid.uuid4()}"}
    while True:
        try:
            return gateway.post(f"{RECIPES}/{quote_segment(recipe_id)}/execute", {"input_data": inputs}, key)
        except ClientError as exc:
            if exc.status not in (404, *RETRIED_STATUSES) or time.monotonic() >= deadline:
                raise
            if exc.status == 404:
                gateway.get(f"{RECIPES}/{quote_segment(recipe_id)}")  # a 404 here is final: no such recipe
        time.sleep(0.5)


def find_execution_recipe(gateway: Gateway, execution_id: str) -> str:
    active = gateway.get("/api/workflows/active")
    for run in list(active.get("active_workflows") or []) + list(active.get("recipe_runs") or []):
        if run.get("execution_id") == execution_id:
            return str(run["recipe_id"])
    raise ClientError(f"execution {execution_id} is not among the recent ones: pass --recipe")

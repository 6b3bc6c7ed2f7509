"""The Execution aggregate, rebuilt by folding its event stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sous_events.envelope import Envelope
from sous_executor.domain.output_checks import output_views
from sous_executor.domain.outputs import OutputSource, output_data
from sous_executor.domain.planning import PlanError, parse_steps

FINISHED = frozenset({"completed", "failed", "cancelled"})
STEP_FINISHED = frozenset({"completed", "failed", "skipped", "cancelled"})


def _tokens(raw: Any) -> dict[str, int]:
    raw = raw or {}
    return {
        "prompt": int(raw.get("prompt", 0)),
        "completion": int(raw.get("completion", 0)),
        "total": int(raw.get("total", 0)),
    }


@dataclass
class StepState:
    step_id: str
    order: int
    agent_id: str = ""
    agent_name: str = ""
    status: str = "pending"
    attempt: int = 0
    output: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0
    tokens_used: dict[str, int] = field(default_factory=lambda: _tokens(None))
    cost_usd: float = 0.0
    error: str | None = None
    error_type: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    retry_at: datetime | None = None
    next_attempt: int | None = None
    reused: bool = False
    model_ms: float = 0.0
    in_flight: bool = False  # StepStarted seen, no outcome yet
    # StepStarted events in a row without an outcome: each one is a runner that died on this step.
    unfinished_starts: int = 0
    # attempt -> (prompt, completion, cost) reported by StepUsageRecorded, not yet superseded by an outcome.
    pending_usage: dict[int, tuple[int, int, float]] = field(default_factory=dict)
    output_format: str = "text"
    # Every attempt refused by the step's output checks: {attempt, error, failed_checks}.
    check_failures: list[dict[str, Any]] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step_id": self.step_id,
            "order": self.order,
            "agent_id": self.agent_id,
            "agent_name": self.agent_name,
            "status": self.status,
            "attempt": self.attempt,
            "output": self.output,
            "tool_calls": self.tool_calls,
            "duration_ms": self.duration_ms,
            "tokens_used": self.tokens_used,
            "cost_usd": self.cost_usd,
            "error": self.error,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }
        if self.error_type:
            out["error_type"] = self.error_type
        if self.retry_at is not None and self.status == "running":
            out["retry_at"] = self.retry_at.isoformat()
            out["next_attempt"] = self.next_attempt
        if self.reused:
            out["reused"] = True
        if self.model_ms:
            out["model_ms"] = self.model_ms
        out.update(output_views(self.output, self.output_format, self.check_failures))
        return out


@dataclass
class Execution:
    execution_id: str = ""
    workspace_id: str = ""
    recipe_id: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_data: dict[str, Any] = field(default_factory=dict)
    triggered_by: str = "manual"
    rerun_of: str | None = None
    from_step: str | None = None
    reused_results: list[dict[str, Any]] = field(default_factory=list)
    step_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "pending"
    steps: dict[str, StepState] = field(default_factory=dict)
    cancel_requested: bool = False
    cancel_reason: str = ""
    runner_id: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    output_data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    total_tokens: int = 0
    total_cost_usd: float = 0.0
    total_duration_ms: float = 0.0
    version: int = 0
    actor: dict[str, Any] = field(default_factory=dict)
    correlation_id: str = ""

    @classmethod
    def from_events(cls, events: list[Envelope]) -> Execution:
        execution = cls()
        for event in events:
            execution.apply(event)
        return execution

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def recipe_name(self) -> str:
        return str(self.recipe.get("name") or self.recipe_id)

    def ordered_steps(self) -> list[StepState]:
        return sorted(self.steps.values(), key=lambda s: (s.order, s.step_id))

    def step_results(self) -> list[dict[str, Any]]:
        return [s.result() for s in self.ordered_steps()]

    @property
    def finished_steps(self) -> int:
        return sum(1 for s in self.steps.values() if s.status in STEP_FINISHED)

    @property
    def current_step(self) -> int:
        running = [s.order for s in self.steps.values() if s.status == "running"]
        if running:
            return min(running)
        return self.finished_steps

    def apply(self, event: Envelope) -> None:
        p = event.payload
        t = event.event_type
        self.version = event.aggregate_version
        if t == "ExecutionRequested":
            self.execution_id = p["execution_id"]
            self.workspace_id = event.workspace_id
            self.recipe_id = p["recipe_id"]
            self.recipe = dict(p.get("recipe") or {})
            self.agents = dict(p.get("agents") or {})
            self.input_data = dict(p.get("input_data") or {})
            self.triggered_by = p.get("triggered_by") or "manual"
            self.rerun_of = p.get("rerun_of")
            self.from_step = p.get("from_step")
            self.reused_results = list(p.get("reused_results") or [])
            self.step_overrides = dict(p.get("step_overrides") or {})
            self.created_at = event.occurred_at
            self.actor = event.actor.model_dump()
            self.correlation_id = event.correlation_id or self.execution_id
            for index, raw in enumerate(self.recipe.get("steps") or []):
                sid = str(raw.get("step_id") or f"step_{index + 1}")
                agent_id = str(raw.get("agent_id") or "")
                agent = self.agents.get(agent_id) or {}
                self.steps[sid] = StepState(
                    step_id=sid,
                    order=int(raw.get("order", index + 1)),
                    agent_id=agent_id,
                    agent_name=str(agent.get("name") or ""),
                )
        elif t == "ExecutionStarted":
            self.status = "running"
            self.runner_id = p.get("runner_id", "")
            if self.started_at is None:
                self.started_at = event.occurred_at
        elif t == "StepStarted":
            step = self._step(p)
            step.status = "running"
            step.in_flight = True
            step.unfinished_starts += 1
            step.attempt = int(p.get("attempt", 1))
            step.started_at = event.occurred_at
            step.completed_at = None
            step.error = None
            step.error_type = None
            step.retry_at = None
            step.next_attempt = None
        elif t == "StepCompleted":
            step = self._step(p)
            step.status = "completed"
            step.in_flight = False
            step.unfinished_starts = 0
            step.attempt = int(p.get("attempt", 1))
            step.output = p.get("output", "")
            step.tool_calls = list(p.get("tool_calls") or [])
            step.duration_ms = float(p.get("duration_ms", 0.0))
            step.tokens_used = _tokens(p.get("tokens"))
            step.cost_usd = float(p.get("cost_usd", 0.0))
            step.reused = bool(p.get("reused", False))
            step.output_format = str(p.get("output_format") or "text")
            step.error = None
            step.completed_at = event.occurred_at
            if step.started_at is None:
                step.started_at = event.occurred_at
            self._settle_usage(step, step.tokens_used["total"], step.cost_usd)
        elif t == "StepFailed":
            step = self._step(p)
            step.in_flight = False
            step.unfinished_starts = 0
            step.attempt = int(p.get("attempt", 1))
            step.error = p.get("error")
            step.error_type = p.get("error_type")
            failed_checks = list(p.get("failed_checks") or [])
            if failed_checks:
                step.check_failures.append(
                    {"attempt": step.attempt, "error": step.error, "failed_checks": failed_checks}
                )
            step.tool_calls = list(p.get("tool_calls") or [])
            step.duration_ms = float(p.get("duration_ms", 0.0))
            tokens = _tokens(p.get("tokens"))
            step.tokens_used = tokens
            step.cost_usd = float(p.get("cost_usd", 0.0))
            self._settle_usage(step, tokens["total"], step.cost_usd)
            if p.get("will_retry"):
                step.status = "running"
                step.retry_at = _dt(p.get("retry_at"))
                step.next_attempt = step.attempt + 1
            else:
                step.status = "cancelled" if step.error_type == "cancelled" else "failed"
                step.completed_at = event.occurred_at
        elif t == "StepUsageRecorded":
            step = self._step(p)
            attempt = int(p.get("attempt", 1))
            usage = _tokens(p.get("tokens"))
            cost = float(p.get("cost_usd", 0.0))
            before = step.pending_usage.get(attempt, (0, 0, 0.0))
            step.pending_usage[attempt] = (
                before[0] + usage["prompt"],
                before[1] + usage["completion"],
                before[2] + cost,
            )
            self.total_tokens += usage["total"]
            self.total_cost_usd += cost
        elif t == "StepRetryScheduled":
            step = self._step(p)
            step.next_attempt = int(p["next_attempt"])
            step.retry_at = _dt(p.get("retry_at"))
        elif t == "StepSkipped":
            step = self._step(p)
            step.status = "skipped"
            step.in_flight = False
            step.error = p.get("reason") or None
        elif t == "ExecutionCancelRequested":
            self.cancel_requested = True
            self.cancel_reason = p.get("reason", "")
        elif t == "ExecutionFinished":
            self.status = p["status"]
            # A summary carries previews only; the full outputs are the steps' own.
            self.output_data = (
                (self.full_output_data()[0] if self.status == "completed" else {})
                if p.get("summary")
                else dict(p.get("output_data") or {})
            )
            self.error = p.get("error")
            self.completed_at = event.occurred_at
            totals = p.get("totals") or {}
            self.total_duration_ms = float(totals.get("duration_ms", 0.0))
            self.total_tokens = int(totals.get("tokens", self.total_tokens))
            self.total_cost_usd = float(totals.get("cost_usd", self.total_cost_usd))
            for raw in p.get("step_results") or []:
                final = self.steps.get(str(raw.get("step_id")))
                if final is not None:
                    final.status = raw.get("status", final.status)
                    final.model_ms = float(raw.get("model_ms", final.model_ms) or 0.0)
                    final.in_flight = False

    def _settle_usage(self, step: StepState, tokens: int, cost: float) -> None:
        """An outcome carries its attempt's whole usage: it replaces what StepUsageRecorded reported."""
        reported_prompt, reported_completion, reported_cost = step.pending_usage.pop(step.attempt, (0, 0, 0.0))
        self.total_tokens += tokens - reported_prompt - reported_completion
        self.total_cost_usd += cost - reported_cost

    def full_output_data(self) -> tuple[dict[str, Any], dict[str, str]]:
        """output_data (every output in full) and, per name, the step holding it."""
        try:
            specs = parse_steps(self.recipe.get("steps") or [])
        except PlanError:
            specs = []
        keys = {s.output_key: s.step_id for s in specs if s.output_key}
        sources = [OutputSource(s.step_id, s.status, s.output) for s in self.ordered_steps()]
        return output_data(sources, keys, self.recipe.get("outputs") or {})

    def _step(self, p: dict[str, Any]) -> StepState:
        sid = str(p["step_id"])
        step = self.steps.get(sid)
        if step is None:
            step = StepState(step_id=sid, order=int(p.get("order", len(self.steps) + 1)))
            self.steps[sid] = step
        if p.get("agent_id"):
            step.agent_id = p["agent_id"]
        if p.get("agent_name"):
            step.agent_name = p["agent_name"]
        return step


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))

"""The Execution aggregate, rebuilt by folding its event stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sous_events.contracts import TokenUsage
from sous_events.envelope import Envelope, EventPayload
from sous_events.events.executor import (
    ExecutionCancelRequested,
    ExecutionFinished,
    ExecutionRequested,
    ExecutionStarted,
    StepCompleted,
    StepFailed,
    StepRetryScheduled,
    StepSkipped,
    StepStarted,
    StepUsageRecorded,
)
from sous_events.registry import payload_of
from sous_executor.domain.output_checks import output_views
from sous_executor.domain.outputs import OutputSource, output_data
from sous_executor.domain.planning import PlanError, parse_steps

FINISHED = frozenset({"completed", "failed", "cancelled"})
STEP_FINISHED = frozenset({"completed", "failed", "skipped", "cancelled"})


def _tokens(usage: TokenUsage | None) -> dict[str, int]:
    usage = usage or TokenUsage()
    return {"prompt": usage.prompt, "completion": usage.completion, "total": usage.total}


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
    template_id: str = ""
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
        return str(self.recipe.get("name") or self.template_id)

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

    def apply(self, event: Envelope, payload: EventPayload | None = None) -> None:
        """Fold `event`; `payload`: the typed payload it was made from, when the caller holds it (it is then
        not read back from the envelope)."""
        p = payload_of(event) if payload is None else payload
        self.version = event.aggregate_version
        if isinstance(p, ExecutionRequested):
            self._requested(event, p)
        elif isinstance(p, ExecutionStarted):
            self.status = "running"
            self.runner_id = p.runner_id
            if self.started_at is None:
                self.started_at = event.occurred_at
        elif isinstance(p, StepStarted):
            step = self._step(p.step_id, p.order, p.agent_id, p.agent_name)
            step.status = "running"
            step.in_flight = True
            step.unfinished_starts += 1
            step.attempt = p.attempt
            step.started_at = event.occurred_at
            step.completed_at = None
            step.error = None
            step.error_type = None
            step.retry_at = None
            step.next_attempt = None
        elif isinstance(p, StepCompleted):
            self._completed(event, p)
        elif isinstance(p, StepFailed):
            self._failed(event, p)
        elif isinstance(p, StepUsageRecorded):
            step = self._step(p.step_id)
            before = step.pending_usage.get(p.attempt, (0, 0, 0.0))
            step.pending_usage[p.attempt] = (
                before[0] + p.tokens.prompt,
                before[1] + p.tokens.completion,
                before[2] + p.cost_usd,
            )
            self.total_tokens += p.tokens.total
            self.total_cost_usd += p.cost_usd
        elif isinstance(p, StepRetryScheduled):
            step = self._step(p.step_id)
            step.next_attempt = p.next_attempt
            step.retry_at = p.retry_at
        elif isinstance(p, StepSkipped):
            step = self._step(p.step_id)
            step.status = "skipped"
            step.in_flight = False
            step.error = p.reason or None
        elif isinstance(p, ExecutionCancelRequested):
            self.cancel_requested = True
            self.cancel_reason = p.reason
        elif isinstance(p, ExecutionFinished):
            self._finished(event, p)

    def _requested(self, event: Envelope, p: ExecutionRequested) -> None:
        self.execution_id = p.execution_id
        self.workspace_id = event.workspace_id
        self.template_id = p.template_id
        self.recipe = p.recipe.as_dict()
        self.agents = {agent_id: agent.as_dict() for agent_id, agent in p.agents.items()}
        self.input_data = dict(p.input_data)
        self.triggered_by = p.triggered_by or "manual"
        self.rerun_of = p.rerun_of
        self.from_step = p.from_step
        self.reused_results = [result.as_dict() for result in p.reused_results]
        self.step_overrides = {step_id: o.as_dict() for step_id, o in p.step_overrides.items()}
        self.created_at = event.occurred_at
        self.actor = event.actor.model_dump()
        self.correlation_id = event.correlation_id or self.execution_id
        for index, raw in enumerate(p.recipe.steps):
            agent = p.agents.get(raw.agent_id)
            order = raw.order if "order" in raw.model_fields_set else index + 1
            sid = raw.step_id or f"step_{index + 1}"
            self.steps[sid] = StepState(
                step_id=sid, order=order, agent_id=raw.agent_id, agent_name=agent.name if agent else ""
            )

    def _completed(self, event: Envelope, p: StepCompleted) -> None:
        step = self._step(p.step_id, p.order, p.agent_id, p.agent_name)
        step.status = "completed"
        step.in_flight = False
        step.unfinished_starts = 0
        step.attempt = p.attempt
        step.output = p.output
        step.tool_calls = [call.model_dump(mode="json") for call in p.tool_calls]
        step.duration_ms = p.duration_ms
        step.tokens_used = _tokens(p.tokens)
        step.cost_usd = p.cost_usd
        step.reused = p.reused
        step.output_format = p.output_format or "text"
        step.error = None
        step.completed_at = event.occurred_at
        if step.started_at is None:
            step.started_at = event.occurred_at
        self._settle_usage(step, p.tokens.total, step.cost_usd)

    def _failed(self, event: Envelope, p: StepFailed) -> None:
        step = self._step(p.step_id, p.order, p.agent_id, p.agent_name)
        step.in_flight = False
        step.unfinished_starts = 0
        step.attempt = p.attempt
        step.error = p.error
        step.error_type = p.error_type
        failed_checks = [check.model_dump(mode="json") for check in p.failed_checks]
        if failed_checks:
            step.check_failures.append({"attempt": step.attempt, "error": step.error, "failed_checks": failed_checks})
        step.tool_calls = [call.model_dump(mode="json") for call in p.tool_calls]
        step.duration_ms = p.duration_ms
        step.tokens_used = _tokens(p.tokens)
        step.cost_usd = p.cost_usd
        self._settle_usage(step, p.tokens.total, step.cost_usd)
        if p.will_retry:
            step.status = "running"
            step.retry_at = p.retry_at
            step.next_attempt = step.attempt + 1
        else:
            step.status = "cancelled" if step.error_type == "cancelled" else "failed"
            step.completed_at = event.occurred_at

    def _finished(self, event: Envelope, p: ExecutionFinished) -> None:
        self.status = p.status
        # A summary carries previews only; the full outputs are the steps' own.
        if p.summary:
            self.output_data = self.full_output_data()[0] if self.status == "completed" else {}
        else:
            self.output_data = dict(p.output_data)
        self.error = p.error
        self.completed_at = event.occurred_at
        self.total_duration_ms = p.totals.duration_ms
        if "tokens" in p.totals.model_fields_set:
            self.total_tokens = p.totals.tokens
        if "cost_usd" in p.totals.model_fields_set:
            self.total_cost_usd = p.totals.cost_usd
        for result in p.step_results:
            final = self.steps.get(result.step_id)
            if final is not None:
                if "status" in result.model_fields_set:
                    final.status = result.status
                if "model_ms" in result.model_fields_set:
                    final.model_ms = result.model_ms
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

    def _step(self, step_id: str, order: int | None = None, agent_id: str = "", agent_name: str = "") -> StepState:
        step = self.steps.get(step_id)
        if step is None:
            step = StepState(step_id=step_id, order=len(self.steps) + 1 if order is None else order)
            self.steps[step_id] = step
        if agent_id:
            step.agent_id = agent_id
        if agent_name:
            step.agent_name = agent_name
        return step

"""Executor events: one stream per execution, from request to finish."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from sous_events.contracts import AgentSnapshot, RecipeSnapshot, StepOverride, StepResult, TokenUsage, ToolCallRecord
from sous_events.envelope import EventPayload

__all__ = [
    "ExecutionCancelRequested",
    "ExecutionFinished",
    "ExecutionRequested",
    "ExecutionStarted",
    "ExecutionTotals",
    "StepCompleted",
    "StepFailed",
    "StepRetryScheduled",
    "StepSkipped",
    "StepStarted",
    "StepUsageRecorded",
    "TokenUsage",
    "ToolCallRecord",
]


class FailedCheck(EventPayload):
    """One output check an answer failed (`type`: schema, json, regex, contains, not_contains, length,
    json_path or judge); `score` is the judge's."""

    name: str
    type: str
    message: str = ""
    score: float | None = None


class ExecutionRequested(EventPayload):
    """v2: `template_id` (v1 called it `recipe_id`); the recipe and its agents as they were at the request."""

    execution_id: str
    template_id: str
    recipe: RecipeSnapshot
    agents: dict[str, AgentSnapshot] = {}
    input_data: dict[str, Any] = {}
    triggered_by: str = "manual"
    rerun_of: str | None = None
    from_step: str | None = None
    reused_results: list[StepResult] = []
    step_overrides: dict[str, StepOverride] = {}


class ExecutionStarted(EventPayload):
    """v2: `template_id` (v1: `recipe_id`)."""

    execution_id: str
    template_id: str
    runner_id: str = ""
    total_steps: int = 0


class StepStarted(EventPayload):
    execution_id: str
    step_id: str
    order: int = 0
    attempt: int = 1
    agent_id: str = ""
    agent_name: str = ""
    prompt: str = ""


class StepCompleted(EventPayload):
    execution_id: str
    step_id: str
    order: int = 0
    attempt: int = 1
    agent_id: str = ""
    agent_name: str = ""
    output: str = ""
    tool_calls: list[ToolCallRecord] = []
    duration_ms: float = 0.0
    tokens: TokenUsage = TokenUsage()
    cost_usd: float = 0.0
    reused: bool = False
    # Set when `output` was cut to the executor's per-event cap; `output_chars` is the full length.
    output_truncated: bool = False
    output_chars: int | None = None
    # "json" when the step declares an output_schema: `output` is then the answer's canonical JSON text.
    output_format: str = "text"


class StepFailed(EventPayload):
    execution_id: str
    step_id: str
    order: int = 0
    attempt: int = 1
    agent_id: str = ""
    agent_name: str = ""
    error: str
    error_type: str = "error"
    will_retry: bool = False
    retry_at: datetime | None = None
    tool_calls: list[ToolCallRecord] = []
    duration_ms: float = 0.0
    tokens: TokenUsage = TokenUsage()
    cost_usd: float = 0.0
    # With error_type "output_invalid": the checks the answer failed (fed back to the next attempt).
    failed_checks: list[FailedCheck] = []


class StepUsageRecorded(EventPayload):
    """What one model call of a step attempt cost, recorded as soon as it answered.

    The attempt's StepCompleted/StepFailed carries the attempt's full usage and supersedes these; an
    attempt interrupted before its outcome (a crash, a lost lease) keeps them, so budgets and totals
    count every call that reached the model.

    `estimated`: the call was cut before it answered (the step's timeout, a cancel, the client's own timeout),
    so no usage came back; the provider had the prompt, and bills it, so its tokens are charged as estimated
    from its length. Written only when true.
    """

    execution_id: str
    step_id: str
    attempt: int = 1
    tokens: TokenUsage = TokenUsage()
    cost_usd: float = 0.0
    estimated: bool = Field(default=False, exclude_if=lambda estimated: not estimated)


class StepRetryScheduled(EventPayload):
    execution_id: str
    step_id: str
    next_attempt: int
    delay_s: float
    retry_at: datetime


class StepSkipped(EventPayload):
    execution_id: str
    step_id: str
    reason: str = ""


class ExecutionCancelRequested(EventPayload):
    execution_id: str
    reason: str = ""


class ExecutionTotals(EventPayload):
    duration_ms: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    steps_completed: int = 0
    steps_failed: int = 0
    steps_total: int = 0


class ExecutionFinished(EventPayload):
    """v2: `template_id` (v1: `recipe_id`)."""

    execution_id: str
    template_id: str
    status: str
    output_data: dict[str, Any] = {}
    error: str | None = None
    totals: ExecutionTotals = ExecutionTotals()
    # Since `summary` is true: step results without `output` and `tool_calls` (each step's StepCompleted
    # holds them once) and `output_data` values cut to a short preview; `output_refs` names the step whose
    # StepCompleted holds each output in full.
    step_results: list[StepResult] = []
    summary: bool = False
    output_refs: dict[str, str] = {}

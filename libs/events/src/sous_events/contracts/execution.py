"""What an execution reports about its steps: usage, tool calls and each step's result."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sous_events.contracts.base import Record, Snapshot

StepStatus = Literal["pending", "running", "completed", "failed", "skipped", "cancelled"]


class TokenUsage(Record):
    prompt: int = 0
    completion: int = 0
    total: int = 0


class ToolCallRecord(Record):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: str | None = None
    duration_ms: float = 0.0


class StepResult(Snapshot):
    """One step of an execution as it stood when the execution finished (or when a rerun reused it).

    In a summary (ExecutionFinished.summary) `output` and `tool_calls` are left out (the step's own
    StepCompleted holds them) and `output_chars` and `tool_call_count` say how large they were.
    """

    step_id: str
    order: int = 0
    agent_id: str = ""
    agent_name: str = ""
    status: StepStatus = "pending"
    attempt: int = 0
    output: str | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    duration_ms: float = 0.0
    tokens_used: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    error: str | None = None
    error_type: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    retry_at: str | None = None
    next_attempt: int | None = None
    reused: bool = False
    model_ms: float = 0.0
    output_chars: int | None = None
    tool_call_count: int | None = None
    # A step whose answer must be JSON: the parsed output; attempts its output checks refused.
    output_json: Any = None
    check_failures: list[dict[str, Any]] | None = None


class StepOverride(Snapshot):
    """A rerun's replacement of one step's prompt."""

    prompt_template: str | None = None

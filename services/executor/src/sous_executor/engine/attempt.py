"""What one step attempt has done so far, and how its failures are named."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from sous_events.events.executor import TokenUsage, ToolCallRecord
from sous_executor.domain.outcomes import AttemptSoFar
from sous_executor.domain.outputs import json_size, preview
from sous_executor.llm.errors import model_failure
from sous_executor.tools.router import ToolNotAllowed

MAX_ERROR_CHARS = 4000
# A tool call record larger than this keeps previews of its arguments and result in events.
MAX_TOOL_RECORD_BYTES = 16 * 1024


class StepFailure(Exception):
    def __init__(self, message: str, error_type: str = "error") -> None:
        super().__init__(message[:MAX_ERROR_CHARS])
        self.error_type = error_type


class BudgetExceeded(StepFailure):
    def __init__(self, message: str) -> None:
        super().__init__(message, "budget")


@dataclass
class InFlight:
    """What a step attempt has done so far (kept when the attempt is interrupted)."""

    attempt: int
    started: bool = False
    waiting_retry: bool = False
    t0: float = field(default_factory=time.perf_counter)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    model_ms: float = 0.0

    def tokens(self) -> TokenUsage:
        return TokenUsage(
            prompt=self.prompt_tokens,
            completion=self.completion_tokens,
            total=self.prompt_tokens + self.completion_tokens,
        )

    def records(self) -> list[ToolCallRecord]:
        return [ToolCallRecord.model_validate(_bounded(r)) for r in self.tool_calls]

    def duration_ms(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000, 3)

    def so_far(self) -> AttemptSoFar:
        if not self.started:
            return AttemptSoFar(attempt=self.attempt, started=False)
        return AttemptSoFar(
            attempt=self.attempt,
            started=True,
            tool_calls=self.records(),
            duration_ms=self.duration_ms(),
            tokens=self.tokens(),
            cost_usd=self.cost,
        )


def _bounded(record: dict[str, Any]) -> dict[str, Any]:
    if json_size(repr(record)) <= MAX_TOOL_RECORD_BYTES:
        return record
    arguments = record.get("arguments")
    return {
        **record,
        "arguments": {"_preview": preview(repr(arguments), 2000)} if arguments else {},
        "result": preview(record["result"] if isinstance(record.get("result"), str) else repr(record.get("result"))),
    }


def classify(error: BaseException, timeout: float | None) -> StepFailure:
    """The StepFailure an exception out of an attempt stands for (CancelledError is never passed here)."""
    if isinstance(error, StepFailure):
        return error
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return StepFailure(f"step exceeded timeout_per_step of {timeout or 0:g}s", "timeout")
    if isinstance(error, ToolNotAllowed):
        return StepFailure(str(error), "tool_not_allowed")
    model = model_failure(error)
    if model is not None:
        return StepFailure(model.message, model.error_type)
    return StepFailure(f"{type(error).__name__}: {error}", "error")

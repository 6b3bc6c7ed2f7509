"""Learning over one execution: patterns, suggestions, performance metrics (the recipe's learning_data is
their fold over its runs: sous_events.learning_fold).

Choices where the model is silent:
- one pattern per occurrence (one per failed/slow/empty/retried step, one per missing input, one failure).
- retry_needed suggests model_upgrade (high) only when the step needed >= 3 retries; tool_addition (medium)
  always.
- missing_input has no suggestion of its own (the model names none).
- error_count counts failed steps; success_rate = successful_steps / total_steps (0 with no steps), 4 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sous_events.contracts import Pattern, PerformanceMetrics, StepDuration, Suggestion
from sous_quality.domain.record import ExecutionRecord

SLOW_PATTERN_MS = 30_000.0
MODEL_UPGRADE_RETRIES = 3

SEVERITY = {
    "failure": "high",
    "step_failure": "high",
    "slow_step": "medium",
    "empty_output": "low",
    "retry_needed": "medium",
    "missing_input": "high",
}


def patterns(record: ExecutionRecord) -> list[Pattern]:
    out: list[Pattern] = []
    if record.status == "failed":
        out.append(_pattern("failure", None, f"The execution failed: {record.error_message or 'no error message'}"))
    for step in record.steps:
        if step.status == "failed":
            out.append(_pattern("step_failure", step.step_id, f"Step '{step.step_id}' failed: {step.error or ''}"))
        if step.duration_ms is not None and step.duration_ms > SLOW_PATTERN_MS:
            out.append(
                _pattern(
                    "slow_step",
                    step.step_id,
                    f"Step '{step.step_id}' took {step.duration_ms / 1000:.1f}s",
                    duration_ms=step.duration_ms,
                )
            )
        if step.status == "completed" and not step.has_output:
            out.append(_pattern("empty_output", step.step_id, f"Step '{step.step_id}' completed with empty output"))
        if step.retries >= 1:
            out.append(
                _pattern(
                    "retry_needed",
                    step.step_id,
                    f"Step '{step.step_id}' needed {step.retries} retr{'y' if step.retries == 1 else 'ies'}",
                    retries=step.retries,
                )
            )
    for name in record.required_inputs:
        if record.input_data.get(name) is None:
            out.append(_pattern("missing_input", None, f"Required input '{name}' was missing or null", input=name))
    return out


def _pattern(kind: str, step_id: str | None, description: str, **extra: Any) -> Pattern:
    # Only the fields a pattern of this kind has are given, so its written form has no nulls.
    where = {} if step_id is None else {"step_id": step_id}
    return Pattern(type=kind, severity=SEVERITY[kind], description=description, **where, **extra)


def _suggestion(kind: str, step_id: str | None, priority: str, message: str) -> Suggestion:
    where = {} if step_id is None else {"step_id": step_id}
    return Suggestion(type=kind, priority=priority, message=message, **where)


def suggestions(found: list[Pattern]) -> list[Suggestion]:
    out: list[Suggestion] = []
    for pattern in found:
        kind = pattern.type
        step_id = pattern.step_id
        where = f"step '{step_id}'" if step_id else "the recipe"
        if kind == "step_failure":
            out.append(
                _suggestion("prompt_rewrite", step_id, "high", f"Rewrite the prompt of {where} to avoid the failure")
            )
            out.append(_suggestion("model_upgrade", step_id, "medium", f"Use a more capable model for {where}"))
        elif kind == "slow_step":
            out.append(
                _suggestion("prompt_rewrite", step_id, "medium", f"Simplify the prompt of {where} to speed it up")
            )
        elif kind == "empty_output":
            out.append(
                _suggestion("prompt_rewrite", step_id, "low", f"Make the prompt of {where} ask for explicit output")
            )
        elif kind == "retry_needed":
            if (pattern.retries or 0) >= MODEL_UPGRADE_RETRIES:
                out.append(
                    _suggestion("model_upgrade", step_id, "high", f"{where} keeps retrying: use a stronger model")
                )
            out.append(
                _suggestion("tool_addition", step_id, "medium", f"Give {where} a tool for the part it retries on")
            )
        elif kind == "failure":
            out.append(_suggestion("prompt_rewrite", None, "high", "Rewrite the failing prompts so the run completes"))
    return out


def performance_metrics(record: ExecutionRecord) -> PerformanceMetrics:
    total = len(record.steps)
    successful = record.completed
    step_tokens = [s.tokens for s in record.steps if s.tokens is not None]
    total_tokens = record.total_tokens if record.total_tokens is not None else sum(step_tokens)
    total_cost = record.total_cost_usd or sum(s.cost_usd for s in record.steps)
    return PerformanceMetrics(
        total_duration_ms=record.total_duration_ms,
        step_durations=[StepDuration(step_id=s.step_id, duration_ms=s.duration_ms) for s in record.steps],
        success_rate=round(successful / total, 4) if total else 0.0,
        total_retries=record.retries,
        error_count=record.failed,
        total_steps=total,
        successful_steps=successful,
        total_tokens=total_tokens,
        total_cost_usd=round(total_cost, 6),
    )


@dataclass(frozen=True)
class Analysis:
    patterns: list[Pattern]
    suggestions: list[Suggestion]
    performance_metrics: PerformanceMetrics


def analyse(record: ExecutionRecord) -> Analysis:
    found = patterns(record)
    return Analysis(found, suggestions(found), performance_metrics(record))

"""The five quality dimensions, the overall score, the grade and the bottlenecks (docs/quality-model.md).

Every function is pure. Sub-scores are in [0, 1]; dimensions and the overall score are rounded to 4
decimals, and the grade is taken from the rounded overall score, so the boundaries are exact.

Choices where the model is silent (documented in docs/quality-model.md):
- time units: step and run durations are milliseconds; timeouts are seconds and are converted.
- a step's own `timeout` overrides `timeout_per_step` for that step.
- a duration is unknown (time score 0.5) when it was not reported; tokens are unknown (token score 0.7)
  when the run reported none (0 or missing).
- ratios of counts are capped at 1 (more results than recipe steps cannot score above 1).
- with no step results: efficiency's mean per-step time score is 0.5 (unknown) and reliability's failed
  share is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sous_events.contracts import Bottleneck, Pattern
from sous_quality.domain.record import ExecutionRecord, StepRecord

RUN_STATUS_TERM = {"completed": 1.0, "running": 0.3}
STATUS_SCORE = {"completed": 1.0, "running": 0.7, "pending": 0.5, "cancelled": 0.2, "failed": 0.0}
GRADES = ((0.9, "A"), (0.75, "B"), (0.6, "C"), (0.4, "D"))
SLOW_STEP_MS = 5_000.0
HIGH_RETRIES = 2


def r4(value: float) -> float:
    return round(value + 0.0, 4)


def _ratio(part: float, whole: float) -> float:
    return min(1.0, part / whole) if whole else 0.0


def completeness(record: ExecutionRecord) -> float:
    expected = record.expected
    if expected == 0:
        return 1.0 if record.status == "completed" else 0.0
    return (
        0.5 * _ratio(record.completed, expected)
        + 0.3 * _ratio(record.with_output, expected)
        + 0.2 * RUN_STATUS_TERM.get(record.status, 0.0)
    )


def _error_free(step: StepRecord) -> bool:
    return step.status != "failed" and not step.error


def outputs_share(record: ExecutionRecord) -> float:
    if not record.output_keys:
        return 1.0
    present = sum(1 for key in record.output_keys if key in record.output_data)
    return present / len(record.output_keys)


def accuracy(record: ExecutionRecord) -> float:
    steps = record.steps
    if not steps:
        return 0.5
    error_free = sum(1 for s in steps if _error_free(s))
    return 0.5 * error_free / len(steps) + 0.3 * outputs_share(record) + 0.2 * (0.0 if record.error_message else 1.0)


def time_score(duration: float | None, timeout: float) -> float:
    """1 when within half the timeout, then falling from 0.75 to 0.5 at the timeout, 0 beyond; 0.5 unknown."""
    if duration is None:
        return 0.5
    if timeout <= 0:
        return 0.5
    if duration <= 0.5 * timeout:
        return 1.0
    if duration <= timeout:
        return 1.0 - 0.5 * duration / timeout
    return 0.0


def step_time_score(step: StepRecord, record: ExecutionRecord) -> float:
    timeout_s = step.timeout_s or record.timeout_per_step_s
    return time_score(step.duration_ms, timeout_s * 1000.0)


def efficiency(record: ExecutionRecord) -> float:
    steps = record.steps
    per_step = sum(step_time_score(s, record) for s in steps) / len(steps) if steps else 0.5
    total = time_score(record.total_duration_ms, record.total_timeout_s * 1000.0)
    mean_retries = record.retries / len(steps) if steps else 0.0
    return 0.4 * per_step + 0.3 * total + 0.3 * max(0.0, 1.0 - 0.25 * mean_retries)


def pattern_score(patterns: Sequence[Pattern]) -> float:
    high = sum(1 for p in patterns if p.severity == "high")
    medium = sum(1 for p in patterns if p.severity == "medium")
    return max(0.0, 1.0 - 0.3 * high - 0.1 * medium)


def reliability(record: ExecutionRecord, patterns: Sequence[Pattern]) -> float:
    steps = record.steps
    failed_share = record.failed / len(steps) if steps else 0.0
    return 0.4 * STATUS_SCORE.get(record.status, 0.0) + 0.3 * pattern_score(patterns) + 0.3 * (1.0 - failed_share)


def token_score(total_tokens: int | None, budget: int) -> float:
    if not total_tokens:
        return 0.7
    return max(0.0, 1.0 - total_tokens / budget)


def cost(record: ExecutionRecord) -> float:
    steps = record.steps
    if not steps:
        return 0.5
    n = len(steps)
    return (
        0.3 * max(0.0, 1.0 - record.retries / (2 * n))
        + 0.3 * record.with_output / n
        + 0.2 * min(1.0, record.expected / n)
        + 0.2 * token_score(record.total_tokens, record.token_budget)
    )


def grade(score: float) -> str:
    for threshold, letter in GRADES:
        if score >= threshold:
            return letter
    return "F"


def bottlenecks(record: ExecutionRecord) -> list[Bottleneck]:
    """slow_step (among the 3 slowest, those over 5 s), failed_step (each), high_retry_step (>= 2 retries)."""
    indexed = list(enumerate(record.steps))
    out: list[Bottleneck] = []
    timed = [(i, s) for i, s in indexed if s.duration_ms is not None]
    slowest = sorted(timed, key=lambda item: (-(item[1].duration_ms or 0.0), item[0]))[:3]
    for i, step in slowest:
        duration = step.duration_ms or 0.0
        if duration > SLOW_STEP_MS:
            out.append(_bottleneck("slow_step", i, step, f"Step '{step.step_id}' took {duration / 1000:.1f}s"))
    for i, step in indexed:
        if step.status == "failed":
            reason = f": {step.error}" if step.error else ""
            out.append(_bottleneck("failed_step", i, step, f"Step '{step.step_id}' failed{reason}"))
    for i, step in indexed:
        if step.retries >= HIGH_RETRIES:
            out.append(_bottleneck("high_retry_step", i, step, f"Step '{step.step_id}' needed {step.retries} retries"))
    return out


def _bottleneck(kind: str, index: int, step: StepRecord, description: str) -> Bottleneck:
    return Bottleneck(
        type=kind, step_id=step.step_id, step_index=index, agent_id=step.agent_id, description=description
    )


@dataclass(frozen=True)
class Assessment:
    quality_score: float
    breakdown: dict[str, float]
    grade: str
    bottlenecks: list[Bottleneck]


def assess(record: ExecutionRecord, patterns: Sequence[Pattern]) -> Assessment:
    """The five dimensions (4 decimals), their plain mean, its grade and the bottlenecks."""
    breakdown = {
        "completeness": r4(completeness(record)),
        "accuracy": r4(accuracy(record)),
        "efficiency": r4(efficiency(record)),
        "reliability": r4(reliability(record, patterns)),
        "cost": r4(cost(record)),
    }
    overall = r4(sum(breakdown.values()) / len(breakdown))
    return Assessment(overall, breakdown, grade(overall), bottlenecks(record))

"""Patterns, suggestions, performance metrics and the rolling score (quality-model.md)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sous_events.contracts import Snapshot
from sous_quality.domain import learning
from sous_quality.domain.agents import AgentTotals
from sous_quality.domain.record import ExecutionRecord, StepRecord
from sous_quality.domain.rolling import next_rolling_score

pytestmark = pytest.mark.unit


def step(step_id: str, status: str = "completed", **kw: object) -> StepRecord:
    kw.setdefault("output", "text" if status == "completed" else None)
    return StepRecord(step_id=step_id, status=status, **kw)  # type: ignore[arg-type]


def run(*steps: StepRecord, **kw: object) -> ExecutionRecord:
    kw.setdefault("status", "completed")
    return ExecutionRecord(execution_id="e", template_id="r", steps=tuple(steps), **kw)  # type: ignore[arg-type]


def kinds(items: Sequence[Snapshot]) -> list[tuple[object, ...]]:
    # On the written form: a pattern or suggestion without a step has no `step_id` at all.
    written = [i.as_dict() for i in items]
    return [(i["type"], i.get("step_id"), i.get("severity", i.get("priority"))) for i in written]


def test_clean_run_has_no_patterns() -> None:
    assert learning.patterns(run(step("a", duration_ms=30_000.0))) == []


def test_failure() -> None:
    found = learning.patterns(run(status="failed", error_message="timeout"))
    assert kinds(found) == [("failure", None, "high")]
    assert kinds(learning.suggestions(found)) == [("prompt_rewrite", None, "high")]


def test_step_failure() -> None:
    found = learning.patterns(run(step("a", "failed", error="bad")))
    assert kinds(found) == [("step_failure", "a", "high")]
    assert kinds(learning.suggestions(found)) == [("prompt_rewrite", "a", "high"), ("model_upgrade", "a", "medium")]


def test_slow_step_over_30_seconds() -> None:
    assert learning.patterns(run(step("a", duration_ms=30_000.0))) == []
    found = learning.patterns(run(step("a", duration_ms=30_001.0)))
    assert kinds(found) == [("slow_step", "a", "medium")]
    assert kinds(learning.suggestions(found)) == [("prompt_rewrite", "a", "medium")]


def test_empty_output() -> None:
    found = learning.patterns(run(step("a", output=""), step("b", output={}), step("c", output=0)))
    assert kinds(found) == [("empty_output", "a", "low"), ("empty_output", "b", "low")]
    assert kinds(learning.suggestions(found)) == [("prompt_rewrite", "a", "low"), ("prompt_rewrite", "b", "low")]


def test_retry_needed_below_and_at_three_retries() -> None:
    found = learning.patterns(run(step("a", attempts=3), step("b", attempts=4)))
    assert kinds(found) == [("retry_needed", "a", "medium"), ("retry_needed", "b", "medium")]
    assert [p.retries for p in found] == [2, 3]
    assert kinds(learning.suggestions(found)) == [
        ("tool_addition", "a", "medium"),
        ("model_upgrade", "b", "high"),
        ("tool_addition", "b", "medium"),
    ]


def test_missing_input_missing_or_null() -> None:
    rec = run(required_inputs=("topic", "tone", "audience"), input_data={"topic": "x", "tone": None})
    found = learning.patterns(rec)
    assert [(p.type, p.input, p.severity) for p in found] == [
        ("missing_input", "tone", "high"),
        ("missing_input", "audience", "high"),
    ]
    assert learning.suggestions(found) == []


def test_performance_metrics() -> None:
    rec = run(
        step("a", duration_ms=100.0, tokens=10, cost_usd=0.01),
        step("b", "failed", attempts=3, duration_ms=50.0, tokens=5, cost_usd=0.02),
        total_duration_ms=200.0,
    )
    metrics = learning.performance_metrics(rec)
    assert metrics.as_dict() == {
        "total_duration_ms": 200.0,
        "step_durations": [{"step_id": "a", "duration_ms": 100.0}, {"step_id": "b", "duration_ms": 50.0}],
        "success_rate": 0.5,
        "total_retries": 2,
        "error_count": 1,
        "total_steps": 2,
        "successful_steps": 1,
        "total_tokens": 15,
        "total_cost_usd": 0.03,
    }


def test_rolling_score_over_three_assessments() -> None:
    first = next_rolling_score(None, 0.8)  # the first sets it
    assert first == 0.8
    second = next_rolling_score(first, 0.5)  # 0.3*0.5 + 0.7*0.8 = 0.15 + 0.56 = 0.71
    assert second == 0.71
    third = next_rolling_score(second, 0.9)  # 0.3*0.9 + 0.7*0.71 = 0.27 + 0.497 = 0.767
    assert third == 0.767
    # 4 decimals: 0.3*0.12345 + 0.7*0.5 = 0.037035 + 0.35 = 0.387035 -> 0.387
    assert next_rolling_score(0.5, 0.12345) == 0.387
    assert next_rolling_score(None, 0.123456) == 0.1235


def test_agent_totals_count_final_attempts_as_runs() -> None:
    totals = AgentTotals()
    totals = totals.with_attempt(final=False, success=False, duration_ms=400.0, tokens=10, cost_usd=0.001)
    totals = totals.with_attempt(final=True, success=True, duration_ms=200.0, tokens=20, cost_usd=0.002)
    totals = totals.with_attempt(final=True, success=False, duration_ms=100.0, tokens=5, cost_usd=0.0)
    assert totals.metrics() == {
        "runs": 2,
        "successes": 1,
        "success_rate": 0.5,
        "mean_duration_ms": 150.0,
        "total_tokens": 35,
        "total_cost_usd": 0.003,
        "total_duration_ms": 300.0,
    }
    assert AgentTotals().metrics()["success_rate"] == 0.0

"""Unit tests: output caps and summaries, step outcome rules, budgets, usage accounting, capacity."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sous_events.envelope import EventPayload
from sous_events.events.executor import (
    ExecutionRequested,
    ExecutionStarted,
    StepCompleted,
    StepFailed,
    StepStarted,
    StepUsageRecorded,
    TokenUsage,
)
from sous_events.registry import make_event
from sous_executor.domain.budget_policy import Ledger, Limits, estimate_call, exceeded, exhausted
from sous_executor.domain.execution import Execution
from sous_executor.domain.outcomes import accepts_outcome
from sous_executor.domain.outputs import (
    OutputSource,
    cut_to_bytes,
    json_size,
    output_data,
    summary_output_data,
    summary_result,
)
from sous_executor.domain.retry_policy import after_failure, is_crash_loop
from sous_executor.engine.capacity import Capacity

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------ outputs
def test_small_output_is_kept_whole() -> None:
    cut = cut_to_bytes("hello", 1024)
    assert (cut.text, cut.truncated, cut.original_chars) == ("hello", False, 5)


@pytest.mark.parametrize("text", ["x" * 3_000_000, "\x01" * 200_000, "é漢😀" * 100_000, '"\\' * 100_000])
def test_large_output_is_cut_under_the_cap_with_a_marker(text: str) -> None:
    cut = cut_to_bytes(text, 64 * 1024)
    assert cut.truncated and cut.original_chars == len(text)
    assert json_size(cut.text) <= 64 * 1024
    assert "output truncated by Sous" in cut.text
    assert text.startswith(cut.text.split("\n[… output truncated")[0])


def test_output_data_names_its_sources_and_summary_keeps_every_name() -> None:
    steps = [
        OutputSource("a", "completed", "A" * 5000),
        OutputSource("b", "failed", None),
        OutputSource("c", "completed", "C"),
    ]
    full, refs = output_data(steps, {"first": "a", "second": "b"}, ["c"])
    assert full == {"first": "A" * 5000, "c": "C", "final_output": "C", "steps": {"a": "A" * 5000, "c": "C"}}
    assert refs == {"first": "a", "c": "c", "final_output": "c"}
    summary = summary_output_data(full)
    assert set(summary) == {"first", "c", "final_output"}
    assert len(summary["first"]) < 2200 and summary["first"].startswith("A" * 2000)


def test_summary_result_drops_outputs_and_tool_calls() -> None:
    result = {"step_id": "a", "status": "completed", "output": "xyz", "tool_calls": [{"name": "t"}], "cost_usd": 1.0}
    assert summary_result(result) == {
        "step_id": "a",
        "status": "completed",
        "cost_usd": 1.0,
        "output_chars": 3,
        "tool_call_count": 1,
    }


# ------------------------------------------------------------------ policy
def test_retry_policy() -> None:
    assert after_failure("model_error", "retry", 1, 2).retry
    assert after_failure("model_error", "retry", 2, 2).retry
    assert after_failure("model_error", "retry", 3, 2) == after_failure("x", "stop", 1, 0)
    assert after_failure("model_error", "retry", 3, 2).outcome == "stop"
    assert after_failure("crash_loop", "retry", 1, 5).outcome == "stop"
    assert after_failure("crash_loop", "continue", 1, 5).outcome == "continue"
    assert after_failure("budget", "continue", 1, 5).outcome == "budget"
    assert not after_failure("model_error", "continue", 1, 5).retry


def test_crash_loop_after_k_starts_without_outcome() -> None:
    assert not is_crash_loop(2, 3)
    assert is_crash_loop(3, 3)


def test_one_outcome_per_attempt() -> None:
    assert accepts_outcome("running", 1, 1)
    assert not accepts_outcome("completed", 1, 1)
    assert not accepts_outcome("cancelled", 1, 1)
    assert not accepts_outcome("running", 2, 1)  # an outcome of an attempt already superseded


# ------------------------------------------------------------------ budget
def test_budget_messages() -> None:
    limits = Limits(max_tokens=100, max_cost_usd=1.0)
    assert exceeded(limits, 100, 0.5) is None
    assert "token budget exceeded" in (exceeded(limits, 101, 0.5) or "")
    assert "cost budget exceeded" in (exceeded(limits, 10, 1.5) or "")
    assert exhausted(limits, 100, 0.0) is not None and exhausted(limits, 99, 0.0) is None


def test_ledger_reserves_waits_and_refuses() -> None:
    ledger = Ledger(Limits(max_tokens=1000))
    verdict, first = ledger.admit(0, 0.0, 600)
    assert verdict == "go" and first is not None
    assert ledger.admit(0, 0.0, 600) == ("wait", None)  # 600 reserved + 600 > 1000
    ledger.settle(first)
    verdict, alone = ledger.admit(700, 0.0, 600)
    assert verdict == "go"  # nothing in flight: a call may start while budget is left
    assert alone is not None
    ledger.settle(alone)
    assert ledger.admit(1000, 0.0, 1) == ("refuse", None)
    assert Ledger(Limits()).admit(10**9, 10.0**9, 10**9)[0] == "go"


def test_call_estimate_uses_max_tokens_or_the_default() -> None:
    assert estimate_call(400, 50, 1024) == 150
    assert estimate_call(400, None, 1024) == 1124


# ------------------------------------------------------------------ usage accounting
def _events(*payloads: EventPayload) -> list[Any]:
    return [
        make_event(p, producer="executor", workspace_id="w", aggregate_id="e", aggregate_version=i)
        for i, p in enumerate(payloads, start=1)
    ]


def _requested() -> ExecutionRequested:
    recipe = {"template_id": "r", "steps": [{"step_id": "s", "order": 1, "agent_id": "a", "prompt_template": "p"}]}
    return ExecutionRequested(execution_id="e", template_id="r", recipe=recipe)


def test_usage_of_an_interrupted_attempt_counts_and_an_outcome_supersedes_its_own() -> None:
    usage = StepUsageRecorded(
        execution_id="e", step_id="s", attempt=1, tokens=TokenUsage(prompt=7, completion=3, total=10), cost_usd=0.5
    )
    execution = Execution.from_events(
        _events(
            _requested(),
            ExecutionStarted(execution_id="e", template_id="r"),
            StepStarted(execution_id="e", step_id="s", attempt=1),
            usage,
            StepStarted(execution_id="e", step_id="s", attempt=2),
            usage.model_copy(update={"attempt": 2}),
        )
    )
    assert execution.total_tokens == 20 and execution.total_cost_usd == pytest.approx(1.0)
    assert execution.steps["s"].unfinished_starts == 2
    done = StepCompleted(
        execution_id="e",
        step_id="s",
        attempt=2,
        output="ok",
        tokens=TokenUsage(prompt=7, completion=3, total=10),
        cost_usd=0.5,
    )
    execution.apply(_events(*([ExecutionStarted(execution_id="e", template_id="r")] * 6), done)[-1])
    assert execution.total_tokens == 20 and execution.total_cost_usd == pytest.approx(1.0)
    assert execution.steps["s"].unfinished_starts == 0


def test_failed_outcome_resets_the_crash_counter() -> None:
    execution = Execution.from_events(
        _events(
            _requested(),
            StepStarted(execution_id="e", step_id="s", attempt=1),
            StepFailed(
                execution_id="e", step_id="s", attempt=1, error="x", will_retry=True, retry_at=datetime.now(UTC)
            ),
        )
    )
    assert execution.steps["s"].unfinished_starts == 0


# ------------------------------------------------------------------ capacity
def test_capacity_holds_reservations_and_runs() -> None:
    capacity = Capacity(2)
    assert capacity.reserve("a") and capacity.reserve("b")
    assert not capacity.reserve("c")
    assert capacity.reserve("a")  # already holding a slot
    capacity.occupy("a")
    capacity.release("b")
    assert capacity.free == 1 and capacity.reserve("c")
    capacity.unreserve("a")  # a running run keeps its slot
    assert not capacity.reserve("d")
    capacity.release("a")
    capacity.release("c")
    assert capacity.free == 2


def test_events_stay_json() -> None:
    assert json.loads(json.dumps(summary_output_data({"final_output": None, "steps": {}}))) == {"final_output": None}

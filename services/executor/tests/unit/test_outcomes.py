"""Unit tests: typed run endings, where a resumed run starts, the events that close a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sous_events.envelope import EventPayload
from sous_events.events.executor import (
    ExecutionRequested,
    ExecutionStarted,
    StepCompleted,
    StepFailed,
    StepRetryScheduled,
    StepSkipped,
    StepStarted,
    StepUsageRecorded,
    TokenUsage,
)
from sous_events.registry import make_event
from sous_executor.domain.execution import Execution
from sous_executor.domain.outcomes import (
    AttemptSoFar,
    RunEnding,
    RunStatus,
    closing_events,
    finished_event,
    records_outcome,
    resume_state,
    reused_completions,
)
from sous_executor.domain.planning import build_plan, parse_steps

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def recipe(*handling: str) -> dict[str, Any]:
    steps = [
        {"step_id": f"s{i}", "order": i, "agent_id": "a", "prompt_template": "p", "error_handling": h}
        for i, h in enumerate(handling, start=1)
    ]
    return {"template_id": "r", "steps": steps, "execution_config": {"mode": "parallel"}}


def execution(raw_recipe: dict[str, Any], *payloads: EventPayload, **requested: Any) -> Execution:
    first = ExecutionRequested(execution_id="e", template_id="r", recipe=raw_recipe, **requested)
    events = [
        make_event(p, producer="executor", workspace_id="w", aggregate_id="e", aggregate_version=i)
        for i, p in enumerate([first, ExecutionStarted(execution_id="e", template_id="r"), *payloads], start=1)
    ]
    return Execution.from_events(events)


def plan_of(agg: Execution) -> Any:
    return build_plan(parse_steps(agg.recipe["steps"]), agg.recipe["execution_config"])


def test_endings_say_how_unfinished_attempts_fail() -> None:
    assert RunEnding.completed() == RunEnding(RunStatus.COMPLETED)
    assert RunEnding.cancelled() == RunEnding(
        RunStatus.CANCELLED, "cancelled by request", "cancelled by request", "cancelled"
    )
    timed_out = RunEnding.timed_out(2.5)
    assert (timed_out.status, timed_out.error, timed_out.step_error_type) == (
        RunStatus.FAILED,
        "total_timeout of 2.5s exceeded",
        "timeout",
    )
    assert RunEnding.invalid_recipe("cycle").step_error == ""


def test_resume_keeps_finished_steps_and_continues_a_scheduled_retry() -> None:
    retry_at = T0 + timedelta(seconds=30)
    agg = execution(
        recipe("stop", "retry", "stop"),
        StepCompleted(execution_id="e", step_id="s1", attempt=1, output="one"),
        StepStarted(execution_id="e", step_id="s2", attempt=1),
        StepFailed(execution_id="e", step_id="s2", attempt=1, error="x", will_retry=True, retry_at=retry_at),
        StepRetryScheduled(execution_id="e", step_id="s2", next_attempt=2, delay_s=30, retry_at=retry_at),
        StepStarted(execution_id="e", step_id="s3", attempt=1),
    )
    state = resume_state(agg, plan_of(agg))
    assert state.finished == {"s1"} and state.stop_failure is None
    assert state.resume == {"s2": (2, retry_at), "s3": (2, None)}


def test_a_failure_under_stop_stops_a_resumed_run_but_continue_does_not() -> None:
    failed = StepFailed(execution_id="e", step_id="s1", attempt=1, error="boom")
    assert (
        resume_state(execution(recipe("continue", "stop"), failed), plan_of(execution(recipe("continue")))).stop_failure
        is None
    )
    stopped = execution(recipe("stop", "stop"), failed)
    assert resume_state(stopped, plan_of(stopped)).stop_failure == "s1"
    ending = RunEnding.stopped_by(stopped, "s1", interrupting=False)
    assert (ending.error, ending.step_error) == ("step s1 failed: boom", "")


def test_closing_fails_interrupted_attempts_and_skips_unstarted_steps() -> None:
    usage = TokenUsage(prompt=3, completion=2, total=5)
    agg = execution(
        recipe("stop", "stop", "stop"),
        StepStarted(execution_id="e", step_id="s1", attempt=1),
        StepStarted(execution_id="e", step_id="s2", attempt=1),
        StepUsageRecorded(execution_id="e", step_id="s2", attempt=1, tokens=usage, cost_usd=0.25),
    )
    here = {"s1": AttemptSoFar(attempt=1, started=True, duration_ms=7.0, tokens=usage, cost_usd=0.1)}
    events = closing_events(agg, here, RunEnding.cancelled())
    assert [type(e).__name__ for e in events] == ["StepFailed", "StepFailed", "StepSkipped"]
    mine, earlier, skipped = events
    assert isinstance(mine, StepFailed) and (mine.step_id, mine.duration_ms, mine.error) == (
        "s1",
        7.0,
        "cancelled by request",
    )
    # s2 was started by an earlier runner: it fails with the usage that runner reported.
    assert isinstance(earlier, StepFailed) and (earlier.step_id, earlier.tokens, earlier.cost_usd) == (
        "s2",
        usage,
        0.25,
    )
    assert isinstance(skipped, StepSkipped) and skipped.reason == "run cancelled before this step started"
    failed = closing_events(agg, {}, RunEnding.invalid_recipe("x"))
    assert {e.error for e in failed if isinstance(e, StepFailed)} == {"interrupted"}


def test_outcomes_are_recorded_once_per_attempt() -> None:
    agg = execution(recipe("stop"), StepCompleted(execution_id="e", step_id="s1", attempt=1, output="ok"))
    assert not records_outcome(agg, StepFailed(execution_id="e", step_id="s1", attempt=1, error="late"))
    assert records_outcome(agg, StepSkipped(execution_id="e", step_id="s1"))


def test_finish_carries_totals_and_outputs_only_when_completed() -> None:
    agg = execution(recipe("stop"), StepCompleted(execution_id="e", step_id="s1", attempt=1, output="done"))
    agg.started_at = T0
    done = finished_event(agg, RunEnding.completed(), {"s1": 12.34567}, T0 + timedelta(seconds=2))
    assert (done.status, done.totals.duration_ms, done.totals.steps_completed) == ("completed", 2000.0, 1)
    assert done.output_data["final_output"] == "done" and done.step_results[0].model_ms == 12.346
    failed = finished_event(agg, RunEnding.over_budget("token budget exceeded"), {}, T0)
    assert (failed.status, failed.error, failed.output_data) == ("failed", "token budget exceeded", {})


def test_a_rerun_records_kept_steps_as_reused() -> None:
    kept = {"step_id": "s1", "attempt": 2, "output": "old", "tool_calls": []}
    agg = execution(recipe("stop", "stop"), reused_results=[kept, {"step_id": "gone"}])
    [reused] = reused_completions(agg, plan_of(agg))
    assert (reused.step_id, reused.attempt, reused.output, reused.reused) == ("s1", 2, "old", True)

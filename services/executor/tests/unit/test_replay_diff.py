"""Replay planning (which steps run again) and the replay's diff."""

from __future__ import annotations

from typing import Any

from sous_executor.domain.output_diff import StepRecord, Usage, replay_diff, text_diff
from sous_executor.domain.replay_plan import apply_overrides, changed_steps, plan_replay


def step(sid: str, order: int, prompt: str = "do it", **extra: Any) -> dict[str, Any]:
    return {"step_id": sid, "order": order, "agent_id": "a1", "prompt_template": prompt, **extra}


THREE = [step("s1", 1), step("s2", 2, "use {steps.s1.output}"), step("s3", 3, "polish {previous_output}")]


def test_a_changed_middle_step_reruns_itself_and_its_descendants() -> None:
    candidate = apply_overrides(THREE, {"s2": {"prompt_template": "shorter {steps.s1.output}"}})
    plan = plan_replay(THREE, candidate, {}, ["s1", "s2", "s3"])
    assert plan.changed == ("s2",)
    assert plan.rerun == ("s2", "s3")
    assert plan.reused == ("s1",)


def test_nothing_changed_reuses_everything() -> None:
    plan = plan_replay(THREE, THREE, {}, ["s1", "s2", "s3"])
    assert plan.rerun == () and plan.reused == ("s1", "s2", "s3")


def test_a_step_without_a_recorded_output_runs_again() -> None:
    plan = plan_replay(THREE, THREE, {}, ["s1", "s2"])
    assert plan.rerun == ("s3",)


def test_dag_descendants_only_not_siblings() -> None:
    dag = [
        step("a", 1),
        step("b", 2, depends_on=["a"]),
        step("c", 3, depends_on=["a"]),
        step("d", 4, depends_on=["b"]),
    ]
    candidate = apply_overrides(dag, {"b": {"prompt_template": "new"}})
    plan = plan_replay(dag, candidate, {}, ["a", "b", "c", "d"])
    assert plan.rerun == ("b", "d")
    assert plan.reused == ("a", "c")


def test_parallel_steps_that_read_a_changed_output_run_again() -> None:
    steps = [step("a", 1), step("b", 2, "sum {steps.a.output}"), step("c", 3, "{summary} again"), step("x", 4)]
    steps[0]["output_key"] = "summary"
    candidate = apply_overrides(steps, {"a": {"prompt_template": "other"}})
    plan = plan_replay(steps, candidate, {"mode": "parallel"}, ["a", "b", "c", "x"])
    assert plan.rerun == ("a", "b", "c")
    assert plan.reused == ("x",)


def test_cosmetic_fields_and_unset_values_are_not_changes() -> None:
    before = [step("s1", 1, name="Outline")]
    after = [step("s1", 1, name="Outline v2", description="new words", depends_on=None, checks=[])]
    assert changed_steps(before, after) == set()
    assert changed_steps(before, [step("s1", 1, output_schema={"type": "object"})]) == {"s1"}


def test_removed_and_new_steps() -> None:
    candidate = [THREE[0], THREE[1], step("s4", 4)]
    plan = plan_replay(THREE, candidate, {}, ["s1", "s2", "s3"])
    assert plan.removed == ("s3",)
    assert plan.changed == ("s4",) and plan.rerun == ("s4",)


def test_text_diff_is_empty_when_equal_and_unified_otherwise() -> None:
    assert text_diff("same", "same") == ""
    diff = text_diff("a\nb\nc", "a\nB\nc")
    assert "-b" in diff and "+B" in diff and diff.startswith("--- original")


def record(sid: str, output: str, tokens: int, cost: float, ms: float, reused: bool = False) -> StepRecord:
    return StepRecord(sid, "completed", output, tokens, cost, ms, reused)


def test_replay_diff_counts_reused_steps_at_their_recorded_usage() -> None:
    original = {
        "s1": record("s1", "one", 10, 0.1, 100),
        "s2": record("s2", "two", 20, 0.2, 200),
        "s3": record("s3", "three", 30, 0.3, 300),
    }
    replay = {
        "s1": record("s1", "one", 0, 0.0, 0, reused=True),
        "s2": record("s2", "TWO", 25, 0.25, 150),
        "s3": record("s3", "three", 30, 0.3, 300),
    }
    report = replay_diff(["s1", "s2", "s3"], original, replay, Usage(60, 0.6, 600), (0.8, 0.9))
    steps = {s["step_id"]: s for s in report["steps"]}
    assert not steps["s1"]["rerun"] and not steps["s1"]["output_changed"] and steps["s1"]["diff"] == ""
    assert steps["s2"]["rerun"] and steps["s2"]["output_changed"] and "+TWO" in steps["s2"]["diff"]
    assert steps["s2"]["tokens_delta"] == 5
    assert steps["s3"]["rerun"] and not steps["s3"]["output_changed"]
    assert report["changed_outputs"] == ["s2"]
    totals = report["totals"]
    assert totals["replay"]["tokens"] == 65
    assert totals["delta"] == {"tokens": 5, "cost_usd": 0.05, "duration_ms": -50.0, "quality_score": 0.1}
    assert totals["replay_spent"]["tokens"] == 55


def test_quality_delta_is_null_until_both_runs_are_assessed() -> None:
    original = {"s1": record("s1", "one", 10, 0.1, 100)}
    replay = {"s1": record("s1", "uno", 10, 0.1, 100)}
    report = replay_diff(["s1"], original, replay, Usage(10, 0.1, 100), (0.8, None))
    assert report["totals"]["delta"]["quality_score"] is None

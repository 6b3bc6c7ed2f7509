"""Every formula of docs/quality-model.md, pinned with worked examples computed by hand in the comments."""

from __future__ import annotations

import pytest

from sous_events.contracts import Pattern
from sous_quality.domain import scoring
from sous_quality.domain.learning import patterns as find_patterns
from sous_quality.domain.record import ExecutionRecord, StepRecord, record_from_copies

pytestmark = pytest.mark.unit


def step(step_id: str, status: str = "completed", **kw: object) -> StepRecord:
    kw.setdefault("output", "text" if status == "completed" else None)
    return StepRecord(step_id=step_id, status=status, **kw)  # type: ignore[arg-type]


def run(*steps: StepRecord, **kw: object) -> ExecutionRecord:
    kw.setdefault("status", "completed")
    return ExecutionRecord(execution_id="e", template_id="r", steps=tuple(steps), **kw)  # type: ignore[arg-type]


# The worked example shared with the integration test: three steps, s2 retried once, s3 failed (continue).
# timeout_per_step 10 s, total_timeout 60 s, run 20 s, 1000 tokens, outputs {summary, details}, summary given.
EXAMPLE = run(
    step("s1", order=1, agent_id="a1", duration_ms=2000.0),
    step("s2", order=2, agent_id="a2", attempts=2, duration_ms=8000.0),
    step("s3", "failed", order=3, agent_id="a1", duration_ms=1000.0, error="boom"),
    recipe_step_count=3,
    output_keys=("summary", "details"),
    output_data={"summary": "x"},
    total_duration_ms=20_000.0,
    timeout_per_step_s=10.0,
    total_timeout_s=60.0,
    total_tokens=1000,
)


def test_worked_example_every_dimension() -> None:
    # completeness = 0.5*2/3 + 0.3*2/3 + 0.2*1.0 = 0.33333 + 0.2 + 0.2 = 0.73333
    assert scoring.completeness(EXAMPLE) == pytest.approx(0.733333, abs=1e-6)
    # accuracy = 0.5*(2 error-free)/3 + 0.3*(1 of 2 outputs) + 0.2*(no error message) = 0.33333 + 0.15 + 0.2
    assert scoring.accuracy(EXAMPLE) == pytest.approx(0.683333, abs=1e-6)
    # per step (t = 10000 ms): s1 2000 <= 5000 -> 1; s2 8000 <= 10000 -> 1 - 0.5*0.8 = 0.6; s3 -> 1; mean 0.86667
    # total 20000 <= 30000 -> 1; retries 1/3 per step -> 1 - 0.25/3 = 0.91667
    # efficiency = 0.4*0.86667 + 0.3*1 + 0.3*0.91667 = 0.34667 + 0.3 + 0.275 = 0.92167
    assert scoring.efficiency(EXAMPLE) == pytest.approx(0.921667, abs=1e-6)
    # patterns: retry_needed (medium) on s2, step_failure (high) on s3 -> pattern score 1 - 0.3 - 0.1 = 0.6
    # reliability = 0.4*1.0 + 0.3*0.6 + 0.3*(1 - 1/3) = 0.4 + 0.18 + 0.2 = 0.78
    patterns = find_patterns(EXAMPLE)
    assert scoring.reliability(EXAMPLE, patterns) == pytest.approx(0.78)
    # cost = 0.3*(1 - 1/6) + 0.3*2/3 + 0.2*min(1, 3/3) + 0.2*(1 - 1000/100000) = 0.25 + 0.2 + 0.2 + 0.198 = 0.848
    assert scoring.cost(EXAMPLE) == pytest.approx(0.848)
    result = scoring.assess(EXAMPLE, patterns)
    assert result.breakdown == {
        "completeness": 0.7333,
        "accuracy": 0.6833,
        "efficiency": 0.9217,
        "reliability": 0.78,
        "cost": 0.848,
    }
    # overall = (0.7333 + 0.6833 + 0.9217 + 0.78 + 0.848) / 5 = 3.9663 / 5 = 0.79326 -> 0.7933, grade B
    assert result.quality_score == 0.7933
    assert result.grade == "B"
    assert [
        (b["type"], b["step_id"], b["step_index"], b["agent_id"]) for b in (b.as_dict() for b in result.bottlenecks)
    ] == [
        ("slow_step", "s2", 1, "a2"),
        ("failed_step", "s3", 2, "a1"),
    ]


class TestCompleteness:
    def test_run_status_term(self) -> None:
        # one completed step with output of one expected: 0.5 + 0.3 + 0.2*term
        one = step("s")
        assert scoring.completeness(run(one, status="completed")) == pytest.approx(1.0)
        assert scoring.completeness(run(one, status="running")) == pytest.approx(0.8 + 0.2 * 0.3)
        assert scoring.completeness(run(one, status="failed")) == pytest.approx(0.8)
        assert scoring.completeness(run(one, status="cancelled")) == pytest.approx(0.8)

    def test_expected_is_recipe_step_count(self) -> None:
        # 1 completed with output of 4 expected, run failed: 0.5/4 + 0.3/4 + 0 = 0.2
        assert scoring.completeness(run(step("s"), status="failed", recipe_step_count=4)) == pytest.approx(0.2)

    def test_empty_output_counts_completed_not_with_output(self) -> None:
        # 2 completed, 1 with output, of 2: 0.5*1 + 0.3*0.5 + 0.2 = 0.85
        rec = run(step("a"), step("b", output="  "))
        assert scoring.completeness(rec) == pytest.approx(0.85)

    def test_zero_expected(self) -> None:
        assert scoring.completeness(run(status="completed")) == 1.0
        assert scoring.completeness(run(status="failed")) == 0.0


class TestAccuracy:
    def test_no_steps(self) -> None:
        assert scoring.accuracy(run()) == 0.5

    def test_no_declared_outputs_counts_fully(self) -> None:
        # all error free, no outputs declared, no error: 0.5 + 0.3 + 0.2
        assert scoring.accuracy(run(step("a"))) == pytest.approx(1.0)

    def test_terms(self) -> None:
        # 1 of 2 error free -> 0.25; 0 of 3 outputs present -> 0; error message -> 0
        rec = run(
            step("a"),
            step("b", "failed", error="x"),
            status="failed",
            output_keys=("x", "y", "z"),
            error_message="failed",
        )
        assert scoring.accuracy(rec) == pytest.approx(0.25)
        # 2 of 3 outputs present -> 0.3*2/3 = 0.2
        rec2 = run(step("a"), output_keys=("x", "y", "z"), output_data={"x": 1, "y": None})
        assert scoring.accuracy(rec2) == pytest.approx(0.5 + 0.2 + 0.2)


class TestEfficiency:
    @pytest.mark.parametrize(
        ("duration", "expected"),
        [
            (0.0, 1.0),
            (50.0, 1.0),  # d = 0.5t exactly
            (50.1, 1 - 0.5 * 0.501),
            (80.0, 0.6),
            (100.0, 0.5),  # d = t exactly
            (100.1, 0.0),
            (None, 0.5),
        ],
    )
    def test_time_score(self, duration: float | None, expected: float) -> None:
        assert scoring.time_score(duration, 100.0) == pytest.approx(expected)

    def test_seconds_are_converted_to_milliseconds(self) -> None:
        # 150 s step with timeout_per_step 300 s: 150000 <= 0.5*300000 -> 1; total 600 s of 600 -> 0.5
        rec = run(step("a", duration_ms=150_000.0), total_duration_ms=600_000.0)
        # 0.4*1 + 0.3*0.5 + 0.3*1 = 0.85
        assert scoring.efficiency(rec) == pytest.approx(0.85)

    def test_step_timeout_overrides_timeout_per_step(self) -> None:
        rec = run(step("a", duration_ms=9_000.0, timeout_s=10.0), total_duration_ms=None, timeout_per_step_s=300.0)
        # 9000 of 10000 -> 1 - 0.45 = 0.55; total unknown 0.5: 0.4*0.55 + 0.3*0.5 + 0.3 = 0.67
        assert scoring.efficiency(rec) == pytest.approx(0.67)

    def test_retries_term_floors_at_zero(self) -> None:
        # 5 retries on one step: max(0, 1 - 1.25) = 0; unknown durations: 0.4*0.5 + 0.3*0.5 + 0
        rec = run(step("a", attempts=6))
        assert scoring.efficiency(rec) == pytest.approx(0.35)
        # 2 retries over 2 steps -> mean 1 -> 0.75
        rec2 = run(step("a", attempts=3), step("b"))
        assert scoring.efficiency(rec2) == pytest.approx(0.2 + 0.15 + 0.3 * 0.75)


class TestReliability:
    @pytest.mark.parametrize(
        ("status", "score"),
        [("completed", 1.0), ("running", 0.7), ("pending", 0.5), ("cancelled", 0.2), ("failed", 0.0)],
    )
    def test_status_score(self, status: str, score: float) -> None:
        # no patterns -> 0.3; no failed steps -> 0.3
        assert scoring.reliability(run(step("a"), status=status), []) == pytest.approx(0.4 * score + 0.6)

    def test_pattern_score(self) -> None:
        high, medium, low = Pattern(severity="high"), Pattern(severity="medium"), Pattern(severity="low")
        assert scoring.pattern_score([]) == 1.0
        assert scoring.pattern_score([high, medium, low]) == pytest.approx(0.6)
        assert scoring.pattern_score([medium, medium]) == pytest.approx(0.8)
        assert scoring.pattern_score([high] * 4) == 0.0  # 1 - 1.2 floored

    def test_failed_share(self) -> None:
        # failed run, 1 of 4 failed, one high pattern passed in: 0 + 0.3*0.7 + 0.3*0.75 = 0.435
        rec = run(step("a"), step("b"), step("c"), step("d", "failed"), status="failed")
        assert scoring.reliability(rec, [Pattern(severity="high")]) == pytest.approx(0.435)


class TestCost:
    def test_no_steps(self) -> None:
        assert scoring.cost(run()) == 0.5

    def test_terms(self) -> None:
        # 2 steps, retries 2 -> 0.3*(1 - 2/4) = 0.15; 1 with output -> 0.3*0.5 = 0.15
        # expected 1 of 2 results -> 0.2*0.5 = 0.1; tokens 500 of budget 1000 -> 0.2*0.5 = 0.1
        rec = run(
            step("a", attempts=3),
            step("b", output=""),
            recipe_step_count=1,
            total_tokens=500,
            token_budget=1000,
        )
        assert scoring.cost(rec) == pytest.approx(0.5)

    def test_token_score(self) -> None:
        assert scoring.token_score(None, 100_000) == 0.7
        assert scoring.token_score(0, 100_000) == 0.7
        assert scoring.token_score(25_000, 100_000) == pytest.approx(0.75)
        assert scoring.token_score(200_000, 100_000) == 0.0

    def test_retries_term_floors_at_zero(self) -> None:
        # 1 step, 4 retries: max(0, 1 - 4/2) = 0; output 0.3; expected 0.2; tokens unknown 0.2*0.7
        assert scoring.cost(run(step("a", attempts=5))) == pytest.approx(0.3 + 0.2 + 0.14)


@pytest.mark.parametrize(
    ("score", "letter"),
    [
        (1.0, "A"),
        (0.9, "A"),
        (0.8999, "B"),
        (0.75, "B"),
        (0.7499, "C"),
        (0.6, "C"),
        (0.5999, "D"),
        (0.4, "D"),
        (0.3999, "F"),
        (0.0, "F"),
    ],
)
def test_grade_boundaries(score: float, letter: str) -> None:
    assert scoring.grade(score) == letter


def test_overall_is_rounded_mean_and_grades_on_it() -> None:
    # a perfect run: all five 1.0 except cost's token term 0.7 -> cost 0.94; mean 4.94/5 = 0.988 -> A
    rec = run(step("a", duration_ms=1.0), total_duration_ms=1.0)
    result = scoring.assess(rec, [])
    assert result.breakdown["cost"] == 0.94
    assert result.quality_score == 0.988
    assert result.grade == "A"


class TestBottlenecks:
    def test_slow_steps_only_among_three_slowest_over_5s(self) -> None:
        rec = run(
            step("a", duration_ms=6000.0),
            step("b", duration_ms=9000.0),
            step("c", duration_ms=7000.0),
            step("d", duration_ms=8000.0),
            step("e", duration_ms=5000.0),
        )
        slow = [(b.step_id, b.step_index) for b in scoring.bottlenecks(rec) if b.type == "slow_step"]
        assert slow == [("b", 1), ("d", 3), ("c", 2)]

    def test_five_seconds_exactly_is_not_slow(self) -> None:
        assert scoring.bottlenecks(run(step("a", duration_ms=5000.0))) == []
        assert [b.type for b in scoring.bottlenecks(run(step("a", duration_ms=5000.1)))] == ["slow_step"]

    def test_each_failed_step(self) -> None:
        rec = run(step("a", "failed", error="x"), step("b"), step("c", "failed"), status="failed")
        failed = [b for b in scoring.bottlenecks(rec) if b.type == "failed_step"]
        assert [(b.step_id, b.step_index) for b in failed] == [("a", 0), ("c", 2)]
        assert "x" in failed[0].description

    def test_high_retry_from_two_retries(self) -> None:
        rec = run(step("a", attempts=2, agent_id="g1"), step("b", attempts=3, agent_id="g2"))
        assert [b.as_dict() for b in scoring.bottlenecks(rec)] == [
            {
                "type": "high_retry_step",
                "step_id": "b",
                "step_index": 1,
                "agent_id": "g2",
                "description": "Step 'b' needed 2 retries",
            }
        ]


def test_record_from_copies_reads_recipe_settings() -> None:
    recipe = {
        "steps": [{"step_id": "s1", "timeout": 5}, {"step_id": "s2"}],
        "outputs": {"summary": {"type": "string"}},
        "execution_config": {"timeout_per_step": 30, "total_timeout": 90, "max_tokens": 2000},
        "inputs": {"topic": {"required": True}, "tone": {"required": False}},
    }
    rec = record_from_copies(
        execution_id="e",
        template_id="r",
        status="completed",
        steps=[step("s2", order=2), step("s1", order=1)],
        recipe=recipe,
        output_data={},
        error_message="",
        total_duration_ms=None,
        total_tokens=None,
        total_cost_usd=0.0,
        input_data={"topic": None},
    )
    assert [s.step_id for s in rec.steps] == ["s1", "s2"]
    assert rec.steps[0].timeout_s == 5 and rec.steps[1].timeout_s is None
    assert (rec.timeout_per_step_s, rec.total_timeout_s, rec.token_budget) == (30, 90, 2000)
    assert rec.output_keys == ("summary",) and rec.recipe_step_count == 2
    assert rec.required_inputs == ("topic",) and rec.error_message is None


def test_record_defaults() -> None:
    rec = record_from_copies(
        execution_id="e",
        template_id="r",
        status="completed",
        steps=[],
        recipe={},
        output_data=None,
        error_message=None,
        total_duration_ms=None,
        total_tokens=None,
        total_cost_usd=0.0,
        input_data=None,
    )
    assert (rec.timeout_per_step_s, rec.total_timeout_s, rec.token_budget) == (300, 600, 100_000)

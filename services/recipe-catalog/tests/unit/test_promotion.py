"""Promotion decisions from replay outcomes: quality not worse, cost within the ceiling, every replay scored."""

from __future__ import annotations

import pytest

from sous_catalog.domain.promotion import PromotionPolicy, ReplayOutcome, cost_ceiling, decide, outcome_from_report

pytestmark = pytest.mark.unit


def outcome(original: float | None, replay: float | None, cost: tuple[float, float] = (0.01, 0.01)) -> ReplayOutcome:
    return ReplayOutcome(
        execution_id=f"e-{original}-{replay}",
        replay_execution_id=f"r-{original}-{replay}",
        status="completed",
        finished=True,
        original_quality=original,
        replay_quality=replay,
        original_cost_usd=cost[0],
        replay_cost_usd=cost[1],
    )


def test_a_version_as_good_and_as_cheap_is_promoted() -> None:
    report = decide(PromotionPolicy(), 7, [outcome(0.9, 0.92), outcome(0.8, 0.8)])
    assert report.promoted and report.reasons == []
    assert (report.baseline_quality, report.candidate_quality, report.quality_delta) == (0.85, 0.86, 0.01)
    assert report.executions_replayed == 2 and report.revision == 7


def test_a_version_that_lowers_quality_is_refused_with_the_numbers() -> None:
    report = decide(PromotionPolicy(), 3, [outcome(0.99, 0.42), outcome(0.97, 0.44)])
    assert not report.promoted
    assert report.reasons == [
        "quality would drop: the replays score 0.43 on average against 0.98 for the executions they replay "
        "(-0.55, tolerance 0.00)"
    ]


def test_a_drop_within_the_tolerance_is_promoted() -> None:
    assert decide(PromotionPolicy(quality_tolerance=0.05), 2, [outcome(0.9, 0.86)]).promoted
    assert not decide(PromotionPolicy(quality_tolerance=0.05), 2, [outcome(0.9, 0.84)]).promoted


def test_cost_over_the_ceiling_is_refused() -> None:
    report = decide(PromotionPolicy(cost_ceiling_ratio=1.2), 2, [outcome(0.9, 0.9, (0.010, 0.013))])
    assert not report.promoted
    assert report.cost_ceiling_usd == pytest.approx(0.012)
    assert report.reasons[0].startswith("cost would exceed the ceiling: 0.013000 USD per run")
    assert decide(PromotionPolicy(cost_ceiling_ratio=1.5), 2, [outcome(0.9, 0.9, (0.010, 0.013))]).promoted


def test_an_amount_per_run_caps_the_ceiling() -> None:
    assert cost_ceiling(PromotionPolicy(cost_ceiling_ratio=2.0, max_cost_usd=0.015), 0.01) == 0.015
    assert cost_ceiling(PromotionPolicy(cost_ceiling_ratio=2.0, max_cost_usd=0.5), 0.0) == 0.5
    assert cost_ceiling(PromotionPolicy(cost_ceiling_ratio=2.0), 0.0) == 0.0


def test_nothing_to_replay_or_an_unscored_replay_refuses() -> None:
    assert decide(PromotionPolicy(), 2, []).reasons == [
        "the recipe has no finished execution to replay the version against"
    ]
    unscored = decide(PromotionPolicy(), 2, [outcome(0.9, None)])
    assert not unscored.promoted and "has no quality score to compare" in unscored.reasons[0]


def test_the_executor_report_is_read_into_an_outcome() -> None:
    report = {
        "replay_execution_id": "r1",
        "status": "completed",
        "finished": True,
        "error": None,
        "changed_steps": ["s2"],
        "rerun_steps": ["s2", "s3"],
        "changed_outputs": ["s2"],
        "totals": {
            "original": {"tokens": 30, "cost_usd": 0.003, "duration_ms": 12.0, "quality_score": 0.97},
            "replay": {"tokens": 31, "cost_usd": 0.0031, "duration_ms": 11.0, "quality_score": 0.41},
        },
    }
    read = outcome_from_report("e1", report)
    assert (read.execution_id, read.replay_execution_id, read.original_quality, read.replay_quality) == (
        "e1",
        "r1",
        0.97,
        0.41,
    )
    assert read.complete and read.rerun_steps == ["s2", "s3"] and read.replay_cost_usd == 0.0031

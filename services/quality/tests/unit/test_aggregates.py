"""The RecipeQuality and AgentMetrics aggregates: decisions from their state, and the state their events leave."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sous_events.events import AgentMetricsUpdated
from sous_quality.domain.agents import AgentMetrics, AgentTotals
from sous_quality.domain.errors import ExecutionNotFinished
from sous_quality.domain.recipe_quality import RecipeQuality, stream_id
from sous_quality.domain.record import ExecutionRecord, StepRecord, recipe_as_run

pytestmark = pytest.mark.unit


def finished(execution_id: str = "e1", status: str = "completed", **kw: object) -> ExecutionRecord:
    steps = (StepRecord(step_id="a", status="completed", output="text", duration_ms=100.0),)
    return ExecutionRecord(execution_id=execution_id, template_id="t", status=status, steps=steps, **kw)  # type: ignore[arg-type]


def test_the_stream_is_named_per_workspace_and_template() -> None:
    assert RecipeQuality("ws", "t").stream_id == stream_id("ws", "t") == "ws:t"


def test_a_first_assessment_sets_the_rolling_score_and_later_ones_move_it() -> None:
    quality = RecipeQuality("ws", "t")
    first = quality.assess(finished("e1"))
    assert (first.template_id, first.execution_id) == ("t", "e1")
    assert first.rolling_score == first.quality_score
    quality = quality.applied(first, version=1)
    assert (quality.rolling_score, quality.assessment_count, quality.version) == (first.quality_score, 1, 1)

    failed = quality.assess(finished("e2", status="failed", error_message="boom"))
    assert failed.quality_score < first.quality_score
    assert failed.rolling_score == round(0.3 * failed.quality_score + 0.7 * first.quality_score, 4)
    assert quality.applied(failed, version=2).assessment_count == 2


def test_a_run_in_which_no_step_ran_is_scored_but_not_counted() -> None:
    """A replay that reuses every result (or a run whose steps were all skipped) costs nothing to repeat: were
    it counted, replaying one good run would pump the rolling score and a quality gate's run count."""
    quality = RecipeQuality("ws", "t", rolling_score=0.5, assessment_count=2, version=4)
    reused = (
        StepRecord(step_id="a", status="completed", output="text", duration_ms=0.0, reused=True),
        StepRecord(step_id="b", status="skipped"),
    )
    replay = ExecutionRecord(execution_id="r", template_id="t", status="completed", steps=reused)
    event = quality.assess(replay)
    assert not event.counted and event.quality_score > 0.5 and event.rolling_score == 0.5
    assert quality.applied(event, version=5) == RecipeQuality("ws", "t", 0.5, 2, 5)

    unscored = RecipeQuality("ws", "t").assess(replay)
    assert not unscored.counted and unscored.rolling_score == round(unscored.quality_score, 4)
    assert RecipeQuality("ws", "t").applied(unscored, version=1).assessment_count == 0

    one_ran = replace(replay, steps=(*reused, StepRecord(step_id="c", status="failed", error="boom")))
    assert quality.assess(one_ran).counted
    assert quality.applied(quality.assess(one_ran), version=5).assessment_count == 3


@pytest.mark.parametrize("status", ["pending", "running"])
def test_an_unfinished_execution_is_neither_assessed_nor_learned_from(status: str) -> None:
    quality = RecipeQuality("ws", "t")
    with pytest.raises(ExecutionNotFinished) as refused:
        quality.assess(finished(status=status))
    assert refused.value.status == status
    with pytest.raises(ExecutionNotFinished):
        quality.learn(finished(status=status), analyzed_at="2026-01-01T00:00:00+00:00")


def test_learning_records_the_runs_analysis_alone_and_keeps_the_score() -> None:
    quality = RecipeQuality("ws", "t", rolling_score=0.8, assessment_count=3, version=6)
    event = quality.learn(finished("e9", status="failed", error_message="boom"), analyzed_at="at-1")
    assert [p.type for p in event.patterns] == ["failure"]
    assert (event.execution_id, event.analyzed_at) == ("e9", "at-1")
    # The recipe's learning_data is folded from the events where it is kept, not carried by each of them.
    assert set(event.model_dump()) == {
        "template_id",
        "execution_id",
        "analyzed_at",
        "patterns",
        "suggestions",
        "performance_metrics",
    }
    after = quality.applied(event, version=7)
    assert (after.rolling_score, after.assessment_count, after.version) == (0.8, 3, 7)


def test_agent_metrics_count_an_attempt_into_an_event_carrying_the_whole_totals() -> None:
    metrics = AgentMetrics("agent-1", AgentTotals(runs=1, successes=1, total_duration_ms=100.0), version=4)
    event = metrics.count(final=True, success=False, duration_ms=300.0, tokens=7, cost_usd=0.5)
    assert event.agent_id == "agent-1"
    assert (event.metrics.runs, event.metrics.successes, event.metrics.mean_duration_ms) == (2, 1, 200.0)
    after = metrics.applied(event, version=5)
    assert after.totals == AgentTotals(runs=2, successes=1, total_duration_ms=400.0, total_tokens=7, total_cost_usd=0.5)
    assert after.version == 5


def test_agent_totals_from_an_older_event_without_total_duration() -> None:
    event = AgentMetricsUpdated(agent_id="a", metrics={"runs": 4, "successes": 3, "mean_duration_ms": 250.0})
    totals = AgentMetrics("a").applied(event, version=1).totals
    assert totals == AgentTotals(runs=4, successes=3, total_duration_ms=1000.0)


def test_the_recipe_as_run_takes_the_catalogs_current_steps_outputs_and_config() -> None:
    snapshot = {"template_id": "t", "inputs": {"q": {"required": True}}, "steps": [{"step_id": "old"}]}
    copy = {"steps": [{"step_id": "new"}], "outputs": {"answer": {}}, "execution_config": {"max_tokens": 10}}
    recipe = recipe_as_run(snapshot, copy)
    assert recipe == {"template_id": "t", "inputs": {"q": {"required": True}}, **copy}
    assert recipe_as_run(snapshot, None) == snapshot
    assert recipe_as_run(None, None) == {}

"""Promotion events with typed replays and reports: stored payloads decode and write out unchanged."""

import pytest

from sous_events.contracts import PromotionReplay, PromotionReport
from sous_events.events import RecipePromotionRefused, RecipePromotionStarted

pytestmark = pytest.mark.unit

OUTCOME = {
    "execution_id": "e1",
    "replay_execution_id": "r1",
    "status": "completed",
    "finished": True,
    "error": None,
    "original_quality": 0.8,
    "replay_quality": 0.6,
    "original_cost_usd": 0.01,
    "replay_cost_usd": 0.01,
    "changed_steps": ["a"],
    "rerun_steps": ["a", "b"],
    "changed_outputs": ["b"],
}
# A report as the catalog stored it while `report` was a plain dict (every field, as the domain wrote it).
REPORT = {
    "revision": 4,
    "promoted": False,
    "reasons": ["quality would drop"],
    "executions_replayed": 1,
    "baseline_quality": 0.8,
    "candidate_quality": 0.6,
    "quality_delta": -0.2,
    "quality_tolerance": 0.0,
    "baseline_cost_usd": 0.01,
    "candidate_cost_usd": 0.01,
    "cost_ceiling_usd": 0.012,
    "replays": [OUTCOME],
}


def test_a_stored_refusal_writes_out_exactly_as_stored() -> None:
    stored = {"recipe_id": "rid", "template_id": "menu", "revision": 4, "reasons": REPORT["reasons"], "report": REPORT}
    refused = RecipePromotionRefused.model_validate(stored)
    assert isinstance(refused.report, PromotionReport)
    assert refused.report.replays[0].complete and refused.report.quality_delta == -0.2
    assert refused.model_dump(mode="json") == stored


def test_started_replays_read_typed() -> None:
    stored = {
        "recipe_id": "rid",
        "template_id": "menu",
        "revision": 4,
        "replays": [{"execution_id": "e1", "replay_execution_id": "r1"}],
    }
    started = RecipePromotionStarted.model_validate(stored)
    assert started.replays == [PromotionReplay(execution_id="e1", replay_execution_id="r1")]
    assert started.model_dump(mode="json") == stored

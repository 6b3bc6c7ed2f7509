"""The quality service's findings as typed contracts: stored events decode and write out unchanged; a stored
v1 or v2 LearningRecorded (the recipe's whole learning_data with it) reads as v3 (the run's analysis only)."""

import pytest

from sous_events import jsontext
from sous_events.contracts import Pattern
from sous_events.envelope import Envelope
from sous_events.events import LearningRecorded, QualityAssessed
from sous_events.registry import EVENT_SPECS, make_event, payload_of

pytestmark = pytest.mark.unit

# Payloads as the quality service stored them while these fields were plain dicts.
STORED_ASSESSMENT = {
    "template_id": "menu",
    "execution_id": "e1",
    "quality_score": 0.7,
    "rolling_score": 0.75,
    "breakdown": {"completeness": 1.0, "accuracy": 0.5, "efficiency": 0.5, "reliability": 0.8, "cost": 0.7},
    "grade": "C",
    "bottlenecks": [
        {"type": "failed_step", "step_id": "a", "step_index": 0, "agent_id": "ag1", "description": "Step 'a' failed"}
    ],
}
METRICS = {
    "total_duration_ms": None,
    "step_durations": [{"step_id": "a", "duration_ms": None}],
    "success_rate": 0.0,
    "total_retries": 2,
    "error_count": 1,
    "total_steps": 1,
    "successful_steps": 0,
    "total_tokens": 0,
    "total_cost_usd": 0.0,
}
PATTERNS = [
    {"type": "failure", "severity": "high", "description": "The execution failed: boom"},
    {
        "type": "retry_needed",
        "severity": "medium",
        "description": "Step 'a' needed 2 retries",
        "step_id": "a",
        "retries": 2,
    },
]
SUGGESTIONS = [{"type": "prompt_rewrite", "priority": "high", "message": "Rewrite the failing prompts"}]
# A v2 LearningRecorded as the quality service stored it: the run's analysis and the recipe's new
# learning_data (here its first analysis), which v3 no longer carries.
STORED_V2_LEARNING = {
    "template_id": "menu",
    "execution_id": "e1",
    "patterns": PATTERNS,
    "suggestions": SUGGESTIONS,
    "performance_metrics": METRICS,
    "learning_data": {
        "analyses": [
            {
                "execution_id": "e1",
                "analyzed_at": "t1",
                "pattern_count": 2,
                "suggestion_count": 1,
                "performance_metrics": METRICS,
            }
        ],
        "latest_patterns": PATTERNS,
        "latest_suggestions": SUGGESTIONS,
        "latest_performance": METRICS,
        "last_analyzed_at": "t1",
    },
}
STORED_LEARNING = {
    "template_id": "menu",
    "execution_id": "e1",
    "analyzed_at": "t1",
    "patterns": PATTERNS,
    "suggestions": SUGGESTIONS,
    "performance_metrics": METRICS,
}


def _stored(version: int, payload: dict[str, object]) -> Envelope:
    return Envelope(
        event_type="LearningRecorded",
        schema_version=version,
        producer="quality",
        workspace_id="w1",
        aggregate_type="RecipeQuality",
        aggregate_id="w1:menu",
        aggregate_version=2,
        payload=payload,
    )


@pytest.mark.parametrize(
    ("kind", "stored"), [(QualityAssessed, STORED_ASSESSMENT), (LearningRecorded, STORED_LEARNING)]
)
def test_stored_quality_events_write_out_exactly_as_stored(kind: type, stored: dict[str, object]) -> None:
    assert kind.model_validate(stored).model_dump(mode="json") == stored


def test_findings_read_as_typed_attributes() -> None:
    learned = LearningRecorded.model_validate(STORED_LEARNING)
    assert [p.type for p in learned.patterns] == ["failure", "retry_needed"]
    assert learned.patterns[0].step_id is None and learned.patterns[1].retries == 2
    assert learned.performance_metrics.step_durations[0].step_id == "a"
    assessed = QualityAssessed.model_validate(STORED_ASSESSMENT)
    assert assessed.bottlenecks[0].agent_id == "ag1"


def test_a_learning_event_carries_its_runs_analysis_only() -> None:
    assert EVENT_SPECS["LearningRecorded"].schema_version == 3
    assert set(LearningRecorded.model_fields) == {
        "template_id",
        "execution_id",
        "analyzed_at",
        "patterns",
        "suggestions",
        "performance_metrics",
    }
    event = make_event(
        LearningRecorded.model_validate(STORED_LEARNING),
        producer="quality",
        aggregate_id="w1:menu",
        aggregate_version=2,
        workspace_id="w1",
    )
    assert event.schema_version == 3 and event.payload == STORED_LEARNING
    # A v2 event carried the recipe's last 50 analyses besides: more than ten times the run's analysis.
    learning_data = STORED_V2_LEARNING["learning_data"]
    assert isinstance(learning_data, dict)
    v2 = STORED_V2_LEARNING | {"learning_data": learning_data | {"analyses": learning_data["analyses"] * 50}}
    assert len(jsontext.dumps(event.payload)) * 10 < len(jsontext.dumps(v2))


def test_a_stored_v2_learning_event_reads_as_its_runs_analysis_at_the_time_it_was_made() -> None:
    payload = payload_of(_stored(2, STORED_V2_LEARNING))
    assert payload == LearningRecorded.model_validate(STORED_LEARNING)
    assert payload.model_dump(mode="json") == STORED_LEARNING


def test_a_stored_v2_learning_event_without_a_readable_learning_data_still_reads() -> None:
    for learning_data in ({"analyses": "unread"}, None, "x"):
        payload = payload_of(_stored(2, STORED_V2_LEARNING | {"learning_data": learning_data}))
        assert isinstance(payload, LearningRecorded) and payload.analyzed_at == ""


def test_a_v1_learning_event_upcasts_into_the_typed_payload() -> None:
    v1 = {k: v for k, v in STORED_V2_LEARNING.items() if k != "template_id"} | {"recipe_id": "menu"}
    payload = payload_of(_stored(1, v1))
    assert payload == LearningRecorded.model_validate(STORED_LEARNING)


def test_a_pattern_without_a_step_is_written_without_one() -> None:
    assert Pattern(type="failure", severity="high", description="x").as_dict() == {
        "type": "failure",
        "severity": "high",
        "description": "x",
    }

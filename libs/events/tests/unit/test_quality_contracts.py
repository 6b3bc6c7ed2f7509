"""The quality service's findings as typed contracts: stored events decode and write out unchanged."""

import pytest

from sous_events.contracts import LearningData, Pattern
from sous_events.events import LearningRecorded, QualityAssessed
from sous_events.registry import make_event, payload_of

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
STORED_LEARNING = {
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
    assert learned.learning_data.analyses[0].performance_metrics.error_count == 1
    assessed = QualityAssessed.model_validate(STORED_ASSESSMENT)
    assert assessed.bottlenecks[0].agent_id == "ag1"


def test_a_v1_learning_event_upcasts_into_the_typed_payload() -> None:
    v1 = {k: v for k, v in STORED_LEARNING.items() if k != "template_id"} | {"recipe_id": "menu"}
    envelope = make_event(
        LearningRecorded(**STORED_LEARNING),
        producer="quality",
        aggregate_id="w1:menu",
        aggregate_version=1,
        workspace_id="w1",
    )
    old = envelope.model_copy(update={"schema_version": 1, "payload": v1})
    payload = payload_of(old)
    assert isinstance(payload, LearningRecorded) and payload.template_id == "menu"
    assert isinstance(payload.learning_data, LearningData)


def test_a_pattern_without_a_step_is_written_without_one() -> None:
    assert Pattern(type="failure", severity="high", description="x").as_dict() == {
        "type": "failure",
        "severity": "high",
        "description": "x",
    }

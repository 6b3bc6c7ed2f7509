"""The registry's upcasters: v1 events that called the template id `recipe_id`; v2 LearningRecorded events
that carried the recipe's whole learning_data."""

import pytest

from sous_events import events as ev
from sous_events.envelope import Envelope
from sous_events.registry import EVENT_SPECS, UPCASTERS, make_event, payload_of

pytestmark = pytest.mark.unit

RENAMED = (
    "ExecutionRequested",
    "ExecutionStarted",
    "ExecutionFinished",
    "QualityAssessed",
    "LearningRecorded",
    "ListingSubmitted",
)


def _stored(event_type: str, payload: dict) -> Envelope:
    return Envelope(
        event_type=event_type,
        schema_version=1,
        producer="x",
        workspace_id="w",
        aggregate_type=EVENT_SPECS[event_type].aggregate_type,
        aggregate_id="a",
        aggregate_version=1,
        payload=payload,
    )


@pytest.mark.parametrize("event_type", RENAMED)
def test_v2_calls_the_template_id_template_id(event_type):
    assert EVENT_SPECS[event_type].schema_version >= 2
    assert (event_type, 1) in UPCASTERS
    assert UPCASTERS[(event_type, 1)]({"recipe_id": "menu", "x": 1}) == {"template_id": "menu", "x": 1}


def test_a_stored_v1_execution_request_reads_as_v2():
    stored = _stored(
        "ExecutionRequested",
        {"execution_id": "e", "recipe_id": "menu", "recipe": {"template_id": "menu", "steps": []}},
    )
    payload = payload_of(stored)
    assert isinstance(payload, ev.ExecutionRequested)
    assert payload.template_id == "menu"


def test_a_stored_v1_assessment_reads_as_v2():
    stored = _stored(
        "QualityAssessed",
        {
            "recipe_id": "menu",
            "execution_id": "e",
            "quality_score": 0.5,
            "rolling_score": 0.5,
            "breakdown": {},
            "grade": "C",
        },
    )
    payload = payload_of(stored)
    assert isinstance(payload, ev.QualityAssessed)
    assert payload.template_id == "menu"


def test_a_stored_v1_listing_reads_as_v2():
    stored = _stored(
        "ListingSubmitted",
        {
            "listing_id": "l",
            "name": "Menu",
            "category": "Food",
            "creator_id": "u",
            "source_workspace_id": "w",
            "recipe_id": "menu",
            "recipe": {},
        },
    )
    payload = payload_of(stored)
    assert isinstance(payload, ev.ListingSubmitted)
    assert (payload.template_id, payload.recipe) == ("menu", None)


def test_new_events_are_written_as_v2_and_read_unchanged():
    event = make_event(
        ev.ExecutionStarted(execution_id="e", template_id="menu"),
        producer="x",
        workspace_id="w",
        aggregate_id="e",
        aggregate_version=2,
    )
    assert event.schema_version == 2
    assert "recipe_id" not in event.payload
    assert payload_of(event) == ev.ExecutionStarted(execution_id="e", template_id="menu")


def test_without_its_upcaster_a_v1_event_no_longer_reads(monkeypatch):
    monkeypatch.delitem(UPCASTERS, ("ExecutionStarted", 1))
    with pytest.raises(KeyError):
        payload_of(_stored("ExecutionStarted", {"execution_id": "e", "recipe_id": "menu"}))

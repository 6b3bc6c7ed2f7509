import uuid

import pytest

from sous_events import registry
from sous_events.codec import decode, encode, kafka_headers
from sous_events.envelope import Actor
from sous_events.events import StepCompleted
from sous_events.ids import uuid7
from sous_events.registry import make_event, payload_of, topic_for

pytestmark = pytest.mark.unit


def test_uuid7_is_version_7_and_monotonic():
    ids = [uuid7() for _ in range(5000)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids, key=lambda u: u.int)
    assert len(set(ids)) == len(ids)


def test_envelope_round_trips_through_the_codec():
    event = make_event(
        StepCompleted(execution_id="e1", step_id="s1", output="hi"),
        producer="executor",
        workspace_id="w1",
        aggregate_id="e1",
        aggregate_version=3,
        actor=Actor(user_id="u1", auth_type="jwt"),
    )
    back = decode(encode(event))
    assert back == event
    assert back.aggregate_type == "Execution"
    assert isinstance(payload_of(back), StepCompleted)
    assert dict(kafka_headers(event))["event_type"] == b"StepCompleted"
    assert topic_for("StepCompleted") == "sous.executor.executions.v1"
    uuid.UUID(event.event_id)


def test_unknown_fields_are_ignored_by_consumers():
    event = make_event(
        StepCompleted(execution_id="e1", step_id="s1"),
        producer="x",
        workspace_id="w",
        aggregate_id="e1",
        aggregate_version=1,
    )
    data = event.model_dump(mode="json")
    data["future_field"] = 1
    data["payload"]["future_payload_field"] = {"a": 1}
    back = decode(__import__("json").dumps(data).encode())
    assert payload_of(back) == payload_of(event)


def test_upcaster_turns_an_old_payload_into_the_current_one(monkeypatch):
    spec = registry.EVENT_SPECS["StepCompleted"]
    monkeypatch.setitem(
        registry.EVENT_SPECS,
        "StepCompleted",
        registry.EventSpec(spec.event_type, spec.payload, spec.topic, spec.aggregate_type, schema_version=2),
    )
    monkeypatch.setitem(registry.UPCASTERS, ("StepCompleted", 1), lambda p: {**p, "output": p["text"]})
    old = make_event(
        StepCompleted(execution_id="e", step_id="s"),
        producer="x",
        workspace_id="w",
        aggregate_id="e",
        aggregate_version=1,
    )
    old = old.model_copy(update={"schema_version": 1, "payload": {"execution_id": "e", "step_id": "s", "text": "v1"}})
    assert payload_of(old).output == "v1"  # type: ignore[attr-defined]


def test_new_id_is_the_canonical_text_of_a_monotonic_uuid7():
    from sous_events.ids import new_id

    ids = [new_id() for _ in range(5000)]
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

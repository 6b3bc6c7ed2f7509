import copy

import pytest

from sous_events.schemas import breaking_changes, check_compatibility, current_schemas

pytestmark = pytest.mark.unit

BASE = {
    "type": "object",
    "properties": {
        "execution_id": {"type": "string"},
        "attempt": {"type": "integer"},
        "totals": {"$ref": "#/$defs/Totals"},
    },
    "required": ["execution_id"],
    "$defs": {"Totals": {"type": "object", "properties": {"tokens": {"type": "integer"}}}},
}


def test_checked_in_schemas_match_the_models():
    assert check_compatibility() == {}


def test_every_registered_event_has_an_exported_schema():
    assert len(current_schemas()) == 40


def test_adding_an_optional_field_is_compatible():
    new = copy.deepcopy(BASE)
    new["properties"]["note"] = {"type": "string"}
    assert breaking_changes(BASE, new) == []


def test_removed_field_is_breaking():
    new = copy.deepcopy(BASE)
    del new["properties"]["attempt"]
    assert breaking_changes(BASE, new) == ["attempt: field removed"]


def test_new_required_field_is_breaking():
    new = copy.deepcopy(BASE)
    new["properties"]["runner"] = {"type": "string"}
    new["required"] = ["execution_id", "runner"]
    assert breaking_changes(BASE, new) == ["runner: new required field"]


def test_changed_type_is_breaking():
    new = copy.deepcopy(BASE)
    new["properties"]["attempt"] = {"type": "string"}
    assert breaking_changes(BASE, new) == ["attempt: type changed from integer to string"]


def test_changed_type_inside_a_nested_model_is_breaking():
    new = copy.deepcopy(BASE)
    new["$defs"]["Totals"]["properties"]["tokens"] = {"type": "number"}
    assert breaking_changes(BASE, new) == ["totals.tokens: type changed from integer to number"]


def test_a_model_change_is_caught_against_the_checked_in_folder(tmp_path):
    from sous_events import schemas

    schemas.export(tmp_path)
    path = tmp_path / "StepFailed.v1.json"
    doc = path.read_text().replace('"error"', '"error_message"')
    path.write_text(doc)
    problems = check_compatibility(tmp_path)
    assert "StepFailed.v1" in problems

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


# ---------------------------------------------------------------- one test per rule of the checker

ITEMS = {
    "type": "object",
    "properties": {
        "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}},
        "mode": {"type": "string", "enum": ["sequential", "parallel"]},
        "name": {"type": "string", "maxLength": 100},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["steps"],
    "$defs": {"Step": {"type": "object", "properties": {"step_id": {"type": "string"}}, "required": ["step_id"]}},
}


def _changed(edit):
    new = copy.deepcopy(ITEMS)
    edit(new)
    return breaking_changes(ITEMS, new)


def test_an_optional_field_inside_an_array_item_is_compatible():
    assert _changed(lambda s: s["$defs"]["Step"]["properties"].update(timeout={"type": "number"})) == []


def test_a_required_field_inside_an_array_item_is_breaking():
    def edit(s):
        s["$defs"]["Step"]["properties"]["agent_id"] = {"type": "string"}
        s["$defs"]["Step"]["required"] = ["step_id", "agent_id"]

    assert _changed(edit) == ["steps[].agent_id: new required field"]


def test_a_field_removed_inside_an_array_item_is_breaking():
    assert _changed(lambda s: s["$defs"]["Step"]["properties"].pop("step_id")) == ["steps[].step_id: field removed"]


def test_a_type_changed_inside_an_array_item_is_breaking():
    def edit(s):
        s["$defs"]["Step"]["properties"]["step_id"] = {"type": "integer"}

    assert _changed(edit) == ["steps[].step_id: type changed from string to integer"]


def test_an_optional_field_made_required_is_breaking():
    assert _changed(lambda s: s.update(required=["steps", "mode"])) == ["mode: now required"]


def test_narrowing_an_enum_is_breaking():
    assert _changed(lambda s: s["properties"]["mode"].update(enum=["sequential"])) == [
        "mode: enum narrowed (no longer allows parallel)"
    ]


def test_widening_an_enum_is_compatible():
    assert _changed(lambda s: s["properties"]["mode"].update(enum=["sequential", "parallel", "dag"])) == []


def test_an_enum_on_a_free_field_is_breaking():
    assert _changed(lambda s: s["$defs"]["Step"]["properties"]["step_id"].update(enum=["a"])) == [
        "steps[].step_id: enum narrowed (no longer allows (any value))"
    ]


def test_adding_max_length_is_breaking():
    assert _changed(lambda s: s["$defs"]["Step"]["properties"]["step_id"].update(maxLength=10)) == [
        "steps[].step_id: maxLength tightened to 10"
    ]


def test_lowering_max_length_is_breaking_and_raising_it_is_not():
    assert _changed(lambda s: s["properties"]["name"].update(maxLength=50)) == ["name: maxLength tightened to 50"]
    assert _changed(lambda s: s["properties"]["name"].update(maxLength=500)) == []


def test_adding_a_minimum_or_a_pattern_is_breaking():
    assert _changed(lambda s: s["properties"]["name"].update(minLength=1, pattern="^a")) == [
        "name: minLength tightened to 1",
        "name: pattern changed to '^a'",
    ]


def test_refusing_extra_fields_is_breaking():
    assert _changed(lambda s: s["$defs"]["Step"].update(additionalProperties=False)) == [
        "steps[]: extra fields no longer accepted"
    ]


def test_a_type_changed_inside_a_nullable_field_is_breaking():
    assert _changed(lambda s: s["properties"].update(note={"anyOf": [{"type": "integer"}, {"type": "null"}]})) == [
        "note: type changed from ['\"null\"', '\"string\"'] to ['\"integer\"', '\"null\"']"
    ]


def test_a_type_changed_in_a_mapping_value_is_breaking():
    assert _changed(lambda s: s["properties"]["labels"].update(additionalProperties={"type": "integer"})) == [
        "labels.{*}: type changed from string to integer"
    ]


# ---------------------------------------------------------------- the gate on real models


def _register(monkeypatch, payload):
    from sous_events import registry

    spec = registry.EVENT_SPECS[payload.__name__]
    monkeypatch.setitem(
        registry.EVENT_SPECS, spec.event_type, registry.EventSpec(spec.event_type, payload, spec.topic, "Recipe")
    )


def test_the_gate_catches_a_breaking_change_inside_a_recipes_step(tmp_path, monkeypatch):
    from typing import Literal

    from sous_events import schemas
    from sous_events.contracts import RecipeSnapshot, RecipeStep
    from sous_events.envelope import EventPayload

    schemas.export(tmp_path)

    class NarrowerStep(RecipeStep):
        error_handling: Literal["stop", "retry"] = "stop"  # type: ignore[assignment]

    class NarrowerRecipe(RecipeSnapshot):
        steps: list[NarrowerStep] = []  # type: ignore[assignment]

    class RecipeCreated(EventPayload):
        recipe: NarrowerRecipe

    _register(monkeypatch, RecipeCreated)
    problems = check_compatibility(tmp_path)
    assert problems == {
        "RecipeCreated.v1": ["recipe.steps[].error_handling: enum narrowed (no longer allows continue, skip)"]
    }


def test_the_gate_lets_an_optional_step_field_through_and_asks_for_an_export(tmp_path, monkeypatch):
    from sous_events import schemas
    from sous_events.contracts import RecipeSnapshot, RecipeStep
    from sous_events.envelope import EventPayload

    schemas.export(tmp_path)

    class WiderStep(RecipeStep):
        estimated_minutes: int | None = None

    class WiderRecipe(RecipeSnapshot):
        steps: list[WiderStep] = []  # type: ignore[assignment]

    class RecipeCreated(EventPayload):
        recipe: WiderRecipe

    _register(monkeypatch, RecipeCreated)
    problems = check_compatibility(tmp_path)
    assert list(problems) == ["RecipeCreated.v1"]
    assert "stale" in problems["RecipeCreated.v1"][0]
    schemas.export(tmp_path)
    assert check_compatibility(tmp_path) == {}


def test_an_old_version_stays_exported_only_with_its_upcaster(tmp_path, monkeypatch):
    from sous_events import registry, schemas

    schemas.export(tmp_path)
    (tmp_path / "ExecutionRequested.v1.json").write_text("{}")
    assert check_compatibility(tmp_path) == {}
    monkeypatch.delitem(registry.UPCASTERS, ("ExecutionRequested", 1))
    assert check_compatibility(tmp_path) == {"ExecutionRequested.v1": ["no upcaster chain from v1 to v2"]}

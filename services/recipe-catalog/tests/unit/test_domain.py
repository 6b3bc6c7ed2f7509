"""Pure rules: step graph, schedules, execution config, snapshots, popularity, schemas."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sous_catalog.domain import agent as agent_domain
from sous_catalog.domain import recipe as recipe_domain
from sous_catalog.domain.validation import (
    find_cycle,
    storable_json_errors,
    valid_cron,
    validate_execution_config,
    validate_recipe_fields,
    validate_schedule,
    validate_steps,
)
from sous_catalog.schemas import AgentCreate, RecipeCreate

pytestmark = pytest.mark.unit

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def fields(errors):
    return [e.field for e in errors]


def test_cycles_are_found_and_dags_pass():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    deep = {str(i): [str(i + 1)] for i in range(5000)}
    deep["5000"] = []
    assert find_cycle(deep) is None


def test_step_rules_name_their_fields():
    steps = [
        {"step_id": "a", "order": 1, "agent_id": "x", "depends_on": ["b"]},
        {"step_id": "a", "order": "2", "agent_id": "", "error_handling": "boom"},
        {"step_id": "b", "order": 3, "agent_id": "x", "depends_on": ["nope", "b"]},
    ]
    assert fields(validate_steps(steps)) == [
        "steps[1].step_id",
        "steps[1].order",
        "steps[1].agent_id",
        "steps[1].error_handling",
        "steps[2].depends_on[0]",
        "steps[2].depends_on[1]",
    ]
    cyclic = [
        {"step_id": "a", "order": 1, "agent_id": "x", "depends_on": ["b"]},
        {"step_id": "b", "order": 2, "agent_id": "x", "depends_on": ["a"]},
    ]
    assert fields(validate_steps(cyclic)) == ["steps[0].depends_on"]
    assert fields(validate_steps([])) == ["steps"]


def test_cron_and_schedules():
    assert valid_cron("0 9 * * 1-5") and valid_cron("*/5 * * * *")
    assert not valid_cron("* * * * * *") and not valid_cron("61 * * * *") and not valid_cron("hello")
    assert fields(validate_schedule({"type": "cron", "cron_expression": "bad"})) == ["schedule_config.cron_expression"]
    assert fields(validate_schedule({"type": "trigger"})) == ["schedule_config.trigger_config"]
    assert validate_schedule({"type": "webhook"}) == []


def test_execution_config_numbers_must_be_non_negative():
    errors = validate_execution_config({"mode": "x", "retry_delay": -1, "max_tokens": float("inf")})
    assert fields(errors) == ["execution_config.mode", "execution_config.retry_delay", "execution_config.max_tokens"]


def test_storable_json():
    errors = storable_json_errors({"a": ["ok", "\x00"], "b": float("nan"), "c": "\ud800"}, "template_definition")
    assert sorted(fields(errors)) == ["template_definition.a[1]", "template_definition.b", "template_definition.c"]


def test_update_refuses_nulls_and_create_requires_fields():
    assert fields(validate_recipe_fields({"name": None}, creating=False)) == ["name"]
    assert set(fields(validate_recipe_fields({}, creating=True))) >= {"template_id", "name", "steps"}


def _snapshot(**data):
    base = {
        "template_id": "t",
        "name": "n",
        "description": "d",
        "template_definition": {},
        "steps": [{"step_id": "b", "order": 2, "agent_id": "x"}, {"step_id": "a", "order": 1, "agent_id": "x"}],
        **data,
    }
    return recipe_domain.new_snapshot(
        recipe_id="r1", workspace_id="w", data=base, created_by="u", now=NOW, new_webhook_id=lambda: "hook-1"
    )


def test_snapshot_defaults_and_webhook_ids():
    snapshot = _snapshot(schedule_config={"type": "webhook", "webhook_id": "chosen-by-user"})
    assert [s["step_id"] for s in snapshot["steps"]] == ["a", "b"]
    assert snapshot["schedule_config"]["webhook_id"] == "hook-1"
    assert snapshot["execution_config"]["mode"] == "sequential" and snapshot["is_public"] is True
    assert snapshot["revision"] == 1 and snapshot["version"] == "1.0"
    updated, changed = recipe_domain.apply_changes(
        snapshot,
        {"schedule_config": {"type": "trigger", "trigger_config": {}}, "name": "n"},
        now=NOW,
        new_webhook_id=lambda: "new",
    )
    assert changed == ["schedule_config"] and updated["schedule_config"]["webhook_id"] == "hook-1"
    assert updated["revision"] == 2
    same, nothing = recipe_domain.apply_changes(snapshot, {"name": "n"}, now=NOW, new_webhook_id=lambda: "x")
    assert nothing == [] and same["revision"] == 1
    with pytest.raises(recipe_domain.RecipeLocked):
        recipe_domain.apply_changes({**snapshot, "is_system": True}, {"name": "m"}, now=NOW, new_webhook_id=str)


def test_popularity_formula():
    assert recipe_domain.popularity(0, 1.0, 1.0) == 0
    assert recipe_domain.popularity(10, 1.0, 1.0) == 10
    assert recipe_domain.popularity(10, 0.0, None) == 10 * 0.5 * 0.75
    assert recipe_domain.popularity(10, 0.5, 0.9) > recipe_domain.popularity(10, 0.5, 0.1)


def test_clone_helpers():
    assert recipe_domain.original_template_id("news-digest-0a1b2c") == "news-digest"
    assert recipe_domain.original_template_id("plain") == "plain"
    assert recipe_domain.copy_name("A", ["A", "A (Copy)"]) == "A (Copy 2)"
    assert recipe_domain.category_of([]) == "General" and recipe_domain.category_of(["X", "Y"]) == "X"


def test_agent_schema_refuses_raw_secrets():
    with pytest.raises(ValidationError) as info:
        AgentCreate.model_validate(
            {"name": "a", "model_config": {"provider": "openai", "model_id": "m", "api_key": "sk"}}
        )
    assert info.value.errors()[0]["loc"] == ("model_config", "api_key")
    agent = AgentCreate.model_validate({"name": "a", "model_config": {"provider": "openai", "model_id": "m"}})
    snapshot = agent_domain.new_snapshot(
        agent_id="a1", number=1, workspace_id="w", data=agent.model_dump(by_alias=True), created_by="u", now=NOW
    )
    assert "api_key" not in snapshot["model_config"] and snapshot["configuration"] == {"max_iterations": 10}
    assert agent_domain.enrichment(snapshot) == {
        "id": "a1",
        "number": 1,
        "name": "a",
        "model": "m",
        "provider": "openai",
        "tool_count": 0,
        "status": "active",
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "step_id": st.sampled_from(["a", "b", "c", "d"]),
                "order": st.integers(0, 5),
                "agent_id": st.sampled_from(["x", ""]),
                "depends_on": st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=3),
            }
        ),
        max_size=5,
    )
)
def test_step_validation_never_raises_and_always_names_steps(steps):
    errors = validate_steps(steps)
    assert all(e.field.startswith("steps") for e in errors)
    if not errors:
        graph = {s["step_id"]: s["depends_on"] for s in steps}
        assert find_cycle(graph) is None


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["template_id", "name", "steps", "tags", "execution_config"]), JSON, max_size=4))
def test_recipe_schema_rejections_carry_locations(body):
    try:
        RecipeCreate.model_validate(body)
    except ValidationError as exc:
        assert all(err["loc"] for err in exc.errors())
    else:
        raise AssertionError("a body without description and template_definition must be refused")

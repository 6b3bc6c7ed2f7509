"""The snapshots crossing service boundaries: typed reads, exact round trips, old stored shapes."""

import json

import pytest
from pydantic import ValidationError

from sous_events.contracts import AgentSnapshot, RecipeDefinition, RecipeSnapshot, StepResult
from sous_events.events import ExecutionFinished, ListingSubmitted, RecipeCreated
from sous_events.registry import make_event, payload_of

pytestmark = pytest.mark.unit

# A recipe as the catalog stored it in a RecipeCreated before the contracts were typed (trimmed).
STORED_RECIPE = {
    "id": "0190-r",
    "workspace_id": "w1",
    "template_id": "menu",
    "name": "Menu",
    "description": "",
    "tags": ["food"],
    "template_definition": {},
    "steps": [
        {"step_id": "a", "order": 1, "agent_id": "ag1", "prompt_template": "x", "error_handling": "retry"},
        {"step_id": "b", "order": 2, "agent_id": "ag1", "depends_on": ["a"]},
    ],
    "inputs": {"topic": {"type": "string", "required": True, "enum_hint": ["a"]}},
    "outputs": {},
    "execution_config": {"mode": "parallel", "max_retries": 1, "retry_delay": 5, "parallel_limit": 2},
    "schedule_config": {"type": "webhook", "webhook_id": "wh1"},
    "is_system": False,
    "version": "1.0",
    "cloned_from": None,
    "revision": 3,
    "use_count": 4,
    "quality_score": None,
    "a_field_of_a_newer_catalog": {"kept": True},
}


def test_a_stored_recipe_reads_as_typed_attributes():
    recipe = RecipeSnapshot.model_validate(STORED_RECIPE)
    assert recipe.template_id == "menu"
    assert [s.step_id for s in recipe.steps] == ["a", "b"]
    assert recipe.steps[0].error_handling == "retry"
    assert recipe.steps[1].depends_on == ["a"]
    assert recipe.steps[1].prompt_template == ""  # absent: the default
    assert recipe.execution_config.mode == "parallel"
    assert recipe.execution_config.total_timeout == 600
    assert recipe.schedule_config.webhook_id == "wh1"
    assert recipe.inputs["topic"].required is True
    assert recipe.agent_ids() == ["ag1"]
    assert recipe.revision == 3


def test_a_snapshot_writes_out_exactly_what_it_was_given():
    recipe = RecipeSnapshot.model_validate(STORED_RECIPE)
    assert recipe.as_dict() == STORED_RECIPE
    event = make_event(
        RecipeCreated(recipe=recipe), producer="c", workspace_id="w1", aggregate_id="r", aggregate_version=1
    )
    assert json.loads(json.dumps(event.payload["recipe"])) == STORED_RECIPE


def test_a_recipe_without_its_template_id_is_refused():
    with pytest.raises(ValidationError):
        RecipeSnapshot.model_validate({"name": "no id"})


def test_a_step_with_an_unknown_error_handling_is_refused():
    broken = {**STORED_RECIPE, "steps": [{"step_id": "a", "error_handling": "explode"}]}
    with pytest.raises(ValidationError):
        RecipeSnapshot.model_validate(broken)


def test_an_agent_keeps_its_model_config_key_on_the_wire():
    stored = {"id": "ag1", "name": "Writer", "model_config": {"provider": "openai", "model_id": "m"}, "skills": ["x"]}
    agent = AgentSnapshot.model_validate(stored)
    assert agent.llm_config.model_id == "m"
    assert agent.summary()["tool_count"] == 1
    assert agent.as_dict() == stored


def test_step_results_of_a_summary_leave_the_output_out():
    finished = ExecutionFinished(
        execution_id="e",
        template_id="menu",
        status="completed",
        summary=True,
        step_results=[
            {"step_id": "a", "status": "completed", "tokens_used": {"prompt": 1, "completion": 2, "total": 3}}
        ],
    )
    event = make_event(finished, producer="x", workspace_id="w", aggregate_id="e", aggregate_version=4)
    assert "output" not in event.payload["step_results"][0]
    back = payload_of(event)
    assert isinstance(back, ExecutionFinished)
    result = back.step_results[0]
    assert isinstance(result, StepResult)
    assert (result.status, result.tokens_used.total, result.output) == ("completed", 3, None)


def test_a_listing_submitted_before_listings_carried_recipes_reads_without_one():
    old = {
        "listing_id": "l",
        "name": "n",
        "category": "c",
        "creator_id": "u",
        "source_workspace_id": "w",
        "template_id": "menu",
        "recipe": {},
    }
    assert ListingSubmitted.model_validate(old).recipe is None
    with_recipe = ListingSubmitted.model_validate({**old, "recipe": {"template_id": "menu", "steps": []}})
    assert isinstance(with_recipe.recipe, RecipeDefinition)

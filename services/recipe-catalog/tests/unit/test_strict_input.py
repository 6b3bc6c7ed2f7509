"""Request bodies refuse unknown fields (422 naming the field); the origin client's spellings are declared."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from sous_catalog.schemas import AgentCreate, AgentUpdate, RecipeCreate, RecipeUpdate
from sous_service.errors import field_path

pytestmark = pytest.mark.unit

STEP = {"step_id": "s1", "order": 1, "agent_id": "a1", "prompt_template": "Hi"}
RECIPE = {"template_id": "t1", "name": "T", "description": "", "template_definition": {}, "steps": [STEP]}
AGENT = {"name": "A", "model_config": {"provider": "offline", "model_id": "m"}}


def refused(model: type[BaseModel], body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return [(field_path(e["loc"]), e["type"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (RecipeCreate, {**RECIPE, "colour": "red"}, "colour"),
        (RecipeCreate, {**RECIPE, "steps": [{**STEP, "agentid": "a2"}]}, "steps[0].agentid"),
        (RecipeCreate, {**RECIPE, "execution_config": {"timeout_per_stp": 5}}, "execution_config.timeout_per_stp"),
        (RecipeCreate, {**RECIPE, "schedule_config": {"type": "cron", "cron": "* * * * *"}}, "schedule_config.cron"),
        (RecipeUpdate, {"name": "N", "is_publc": False}, "is_publc"),
        (AgentCreate, {**AGENT, "temperature": 0.3}, "temperature"),
        (
            AgentCreate,
            {**AGENT, "model_config": {"provider": "offline", "model_id": "m", "top_p": 1}},
            "model_config.top_p",
        ),
        (AgentCreate, {**AGENT, "configuration": {"max_iterations": 3, "planner": "x"}}, "configuration.planner"),
        (AgentUpdate, {"llm_config": {"provider": "offline", "model_id": "m"}}, "llm_config"),
    ],
)
def test_an_unknown_field_is_refused_by_its_path(model: type[BaseModel], body: dict[str, Any], field: str) -> None:
    assert (field, "extra_forbidden") in refused(model, body)


def test_the_origin_clients_fields_are_declared_not_dropped() -> None:
    body = {
        **RECIPE,
        "steps": [{**STEP, "pass_to": "s2", "pre_exec": ""}],
        "execution_config": {"mode": "sequential", "memory_isolation": "shared"},
    }
    dumped = RecipeCreate.model_validate(body).model_dump(mode="json", exclude_none=True)
    assert dumped["steps"][0]["pass_to"] == "s2"
    assert dumped["execution_config"]["memory_isolation"] == "shared"

"""Operator rules: granted environment names only, minimum cron interval, caps on steps and edges."""

from __future__ import annotations

import pytest

from sous_catalog.config import CatalogSettings
from sous_catalog.domain.rules import (
    NOT_GRANTED,
    RecipeRules,
    agent_rule_errors,
    cron_interval_s,
    parse_env_grants,
    recipe_rule_errors,
)

pytestmark = pytest.mark.unit

RULES = RecipeRules(env_grants={"w1": frozenset({"ACME_OPENAI_KEY"})}, max_steps=3, max_dependency_edges=2)


def fields(errors: list) -> list[str]:  # type: ignore[type-arg]
    return [e.field for e in errors]


def test_env_names_are_accepted_only_when_granted_to_the_workspace() -> None:
    granted = {"model_config": {"api_key_env": "ACME_OPENAI_KEY"}}
    assert agent_rule_errors(RULES, "w1", granted) == []
    for workspace, name in (("w2", "ACME_OPENAI_KEY"), ("w1", "SOUS_INTERNAL_SECRET"), ("w1", "PATH")):
        errors = agent_rule_errors(RULES, workspace, {"model_config": {"api_key_env": name}})
        assert fields(errors) == ["model_config.api_key_env"] and errors[0].message == NOT_GRANTED
    hook = {"schedule_config": {"type": "webhook", "webhook_secret_env": "SOUS_JWT_SECRET"}}
    assert fields(recipe_rule_errors(RULES, "w1", hook)) == ["schedule_config.webhook_secret_env"]
    assert agent_rule_errors(RULES, "w2", {"model_config": {"api_key_secret": "anything"}}) == []


@pytest.mark.parametrize(
    ("expression", "gap"),
    [("* * * * *", 60), ("*/5 * * * *", 300), ("0,1 * * * *", 60), ("0 9 * * 1-5", 86400), ("0,2 3 1 * *", 120)],
)
def test_cron_interval_is_the_shortest_gap(expression: str, gap: int) -> None:
    assert cron_interval_s(expression) == gap


def test_cron_schedules_below_the_minimum_interval_are_refused() -> None:
    rules = RecipeRules(min_cron_interval_s=300)
    fast = {"schedule_config": {"type": "cron", "cron_expression": "0,1 * * * *"}}
    assert fields(recipe_rule_errors(rules, "w", fast)) == ["schedule_config.cron_expression"]
    ok = {"schedule_config": {"type": "cron", "cron_expression": "*/5 * * * *"}}
    assert recipe_rule_errors(rules, "w", ok) == []


def test_step_and_edge_caps_name_the_steps_field() -> None:
    steps = [{"step_id": f"s{i}", "depends_on": [f"s{j}" for j in range(i)]} for i in range(3)]
    assert [e.type for e in recipe_rule_errors(RULES, "w", {"steps": steps})] == ["too_many_edges"]
    assert [e.type for e in recipe_rule_errors(RULES, "w", {"steps": [*steps, {"step_id": "x"}]})] == [
        "too_long",
        "too_many_edges",
    ]


def test_settings_build_the_rules() -> None:
    rules = CatalogSettings(env_grants='{"w1": ["ACME_OPENAI_KEY"]}', min_cron_interval_s=600).rules()
    assert rules.env_granted("w1", "ACME_OPENAI_KEY") and rules.min_cron_interval_s == 600
    with pytest.raises(ValueError):
        parse_env_grants('["not", "an", "object"]')

"""Operator limits on what a workspace may store: granted environment names, cron frequency, graph size.

Secrets are referenced by name (`api_key_secret`, `webhook_secret`) and resolved by the executor inside
the recipe's own workspace. Environment variable names (`api_key_env`, `webhook_secret_env`) are accepted
only when the operator granted that name to the workspace: any other name would let a workspace make the
executor read one of its own variables. The refusal reads the same whether the variable exists or not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from sous_service.domain_errors import FieldError

NOT_GRANTED = (
    "environment variable names are accepted only when the operator grants them to this workspace "
    "(SOUS_ENV_GRANTS); store the value with PUT /api/secrets/{name} and reference it by name instead"
)


def parse_env_grants(value: str) -> dict[str, frozenset[str]]:
    if not value:
        return {}
    raw: Any = json.loads(value)
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise ValueError("SOUS_ENV_GRANTS must be a JSON object of lists")
    return {str(ws): frozenset(str(n) for n in names) for ws, names in raw.items()}


@dataclass(frozen=True)
class RecipeRules:
    env_grants: Mapping[str, frozenset[str]] = field(default_factory=dict)
    min_cron_interval_s: int = 300
    max_steps: int = 500
    max_dependency_edges: int = 5000

    def env_granted(self, workspace_id: str, name: Any) -> bool:
        return isinstance(name, str) and name in self.env_grants.get(workspace_id, frozenset())


def env_reference_errors(rules: RecipeRules, workspace_id: str, value: Any, where: str) -> list[FieldError]:
    if value is None or rules.env_granted(workspace_id, value):
        return []
    return [FieldError(field=where, message=NOT_GRANTED, type="env_not_granted")]


def agent_rule_errors(rules: RecipeRules, workspace_id: str, data: Mapping[str, Any]) -> list[FieldError]:
    config = data.get("model_config")
    if not isinstance(config, Mapping):
        return []
    return env_reference_errors(rules, workspace_id, config.get("api_key_env"), "model_config.api_key_env")


def cron_interval_s(expression: str, samples: int = 200) -> float:
    """The shortest gap between consecutive runs over the next `samples` runs (patterns repeat)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    it = croniter(expression, start)
    previous = it.get_next(float)
    shortest = float("inf")
    for _ in range(samples):
        current = it.get_next(float)
        shortest = min(shortest, current - previous)
        previous = current
    return shortest


def schedule_rule_errors(rules: RecipeRules, workspace_id: str, schedule: Any) -> list[FieldError]:
    if not isinstance(schedule, Mapping):
        return []
    errors = env_reference_errors(
        rules, workspace_id, schedule.get("webhook_secret_env"), "schedule_config.webhook_secret_env"
    )
    expression = schedule.get("cron_expression")
    if schedule.get("type") == "cron" and isinstance(expression, str) and rules.min_cron_interval_s > 0:
        try:
            gap = cron_interval_s(" ".join(expression.split()))
        except Exception:
            return errors  # the syntax rule reports it
        if gap < rules.min_cron_interval_s:
            errors.append(
                FieldError(
                    field="schedule_config.cron_expression",
                    message=f"runs every {gap:g}s; the minimum interval is {rules.min_cron_interval_s}s",
                    type="cron_interval",
                )
            )
    return errors


def graph_size_errors(rules: RecipeRules, steps: Any) -> list[FieldError]:
    if not isinstance(steps, list):
        return []
    errors: list[FieldError] = []
    if len(steps) > rules.max_steps:
        errors.append(
            FieldError(field="steps", message=f"at most {rules.max_steps} steps ({len(steps)} given)", type="too_long")
        )
    edges = sum(
        len(step["depends_on"])
        for step in steps
        if isinstance(step, Mapping) and isinstance(step.get("depends_on"), list)
    )
    if edges > rules.max_dependency_edges:
        errors.append(
            FieldError(
                field="steps",
                message=f"at most {rules.max_dependency_edges} dependency edges in all depends_on ({edges} given)",
                type="too_many_edges",
            )
        )
    return errors


def recipe_rule_errors(rules: RecipeRules, workspace_id: str, fields: Mapping[str, Any]) -> list[FieldError]:
    errors = graph_size_errors(rules, fields.get("steps"))
    errors.extend(schedule_rule_errors(rules, workspace_id, fields.get("schedule_config")))
    return errors

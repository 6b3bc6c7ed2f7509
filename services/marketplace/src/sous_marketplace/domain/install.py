"""Planning an install: the clone's unique template id, what will be created or mapped, and warnings.

The catalog performs the clone when it consumes RecipeInstalled; this plan tells the caller, from the
marketplace's replica of the target workspace, what that will produce.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from sous_marketplace.domain.snapshot import composio_tools, public_agent, public_recipe

COPY_SUFFIX = " (Copy)"


def installed_template_id(original: str, install_id: str) -> str:
    """`<original>-<first 6 hex of the install id>`: unique per install."""
    return f"{original}-{install_id.replace('-', '')[:6]}"


@dataclass
class InstallPlan:
    recipe: dict[str, Any]
    agents: list[dict[str, Any]]
    cloned_items: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    secrets_to_bind: list[dict[str, Any]] = field(default_factory=list)


def plan_install(
    *,
    recipe: Mapping[str, Any],
    agents: list[dict[str, Any]],
    install_id: str,
    target_agents_by_name: Mapping[str, str],
    target_recipe_names: Set[str],
) -> InstallPlan:
    """The snapshot RecipeInstalled carries, and what the caller is told about it.

    `target_agents_by_name` maps agent names of the target workspace to their ids; `target_recipe_names`
    are the recipe names already used there. The copy starts unscheduled: a schedule of the source would
    otherwise run (and spend) in the target workspace without anyone asking for it.
    """
    # Listings stored before secret references were stripped are scrubbed again here.
    snapshot = public_recipe(dict(recipe))
    agents = [{**public_agent(a), **({"id": a["id"]} if "id" in a else {})} for a in agents]
    original = str(snapshot.get("template_id") or "recipe")
    snapshot["template_id"] = installed_template_id(original, install_id)
    warnings: list[str] = []
    name = str(snapshot.get("name") or original)
    final_name = name + COPY_SUFFIX if name in target_recipe_names else name
    if final_name != name:
        warnings.append(f"a recipe named '{name}' exists in this workspace: the copy is named '{final_name}'")
    schedule = snapshot.get("schedule_config")
    if isinstance(schedule, dict) and schedule.get("type", "manual") != "manual":
        warnings.append(f"the source recipe's {schedule.get('type')} schedule is not installed: the copy runs manually")
        snapshot["schedule_config"] = {"type": "manual"}
    secrets_to_bind: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = [
        {"type": "recipe", "template_id": snapshot["template_id"], "name": final_name, "source_template_id": original}
    ]
    for agent in agents:
        agent_name = str(agent.get("name") or "")
        existing = target_agents_by_name.get(agent_name)
        if existing is not None:
            items.append({"type": "agent", "name": agent_name, "action": "mapped", "agent_id": existing})
            warnings.append(f"agent '{agent_name}' mapped to the existing agent of the same name")
        else:
            items.append({"type": "agent", "name": agent_name, "action": "created"})
            for binding in agent.get("bind_secrets") or []:
                secrets_to_bind.append(
                    {
                        "agent_name": agent_name,
                        "field": binding,
                        "how": "PUT /api/secrets/{name} with your own key, then set this field on the agent",
                    }
                )
    for tool in composio_tools(snapshot, agents):
        warnings.append(f"tool '{tool}' requires Composio (COMPOSIO_API_KEY) in this workspace")
    if secrets_to_bind:
        warnings.append(
            f"{len(secrets_to_bind)} agent(s) used an API key in the source workspace: bind your own (secrets_to_bind)"
        )
    return InstallPlan(
        recipe=snapshot,
        agents=[{k: v for k, v in a.items() if k != "bind_secrets"} for a in agents],
        cloned_items=items,
        warnings=warnings,
        secrets_to_bind=secrets_to_bind,
    )

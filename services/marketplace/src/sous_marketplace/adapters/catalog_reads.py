"""The catalog's own answer for a recipe or agent the marketplace's replicas have not received yet."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sous_service.owner_reads import OwnerReads
from sous_service.scopes import RECIPES_READ


class CatalogReads:
    def __init__(self, owner: OwnerReads) -> None:
        self.owner = owner

    async def recipe(self, workspace_id: str, template_id: str) -> dict[str, Any] | None:
        answer = await self.owner.get(
            workspace_id, RECIPES_READ, f"/api/workflow-recipes/{quote(template_id, safe='')}"
        )
        if answer is None or answer.status != 200 or not answer.body.get("template_id"):
            return None
        recipe = dict(answer.body)
        # The catalog's view adds each step's agent summary; a replica's snapshot has the steps as stored.
        recipe["steps"] = [
            {k: v for k, v in step.items() if k != "agent"}
            for step in recipe.get("steps") or []
            if isinstance(step, dict)
        ]
        return recipe

    async def agent(self, workspace_id: str, agent_id: str) -> dict[str, Any] | None:
        answer = await self.owner.get(workspace_id, RECIPES_READ, f"/api/agents/{quote(agent_id, safe='')}")
        if answer is None or answer.status != 200 or not answer.body.get("id"):
            return None
        return answer.body

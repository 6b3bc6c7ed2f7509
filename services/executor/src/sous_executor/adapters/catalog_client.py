"""Read-through to the catalog when a recipe or agent is not (yet) in the replica."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sous_service.owner_reads import OwnerReads
from sous_service.scopes import RECIPES_READ


class CatalogClient:
    def __init__(self, base_url: str, internal_secret: str, timeout_s: float = 5.0) -> None:
        self.owner = OwnerReads(base_url, internal_secret, "catalog", reader="executor", timeout_s=timeout_s)

    async def _get(self, workspace_id: str, path: str) -> dict[str, Any] | None:
        answer = await self.owner.get(workspace_id, RECIPES_READ, path)
        return answer.body if answer is not None and answer.status == 200 else None

    async def recipe(self, workspace_id: str, template_id: str) -> dict[str, Any] | None:
        body = await self._get(workspace_id, f"/api/workflow-recipes/{quote(template_id, safe='')}")
        if body is None:
            return None
        recipe = body.get("recipe", body)
        return recipe if isinstance(recipe, dict) and recipe.get("template_id") else None

    async def agent(self, workspace_id: str, agent_id: str) -> dict[str, Any] | None:
        body = await self._get(workspace_id, f"/api/agents/{quote(agent_id, safe='')}")
        if body is None:
            return None
        agent = body.get("agent", body)
        return agent if isinstance(agent, dict) and agent.get("id") else None

    async def recipe_revision(self, workspace_id: str, template_id: str, revision: int) -> dict[str, Any] | None:
        """The recipe as it was at `revision` (from the catalog's history), or None."""
        path = f"/api/workflow-recipes/{quote(template_id, safe='')}/history?revision={revision}"
        recipe = (await self._get(workspace_id, path) or {}).get("recipe")
        return recipe if isinstance(recipe, dict) and recipe.get("template_id") else None

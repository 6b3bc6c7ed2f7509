"""Read-through to the catalog when a recipe or agent is not (yet) in the replica."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from sous_service.internal_client import ContextAuth
from sous_service.internal_context import InternalContext

logger = logging.getLogger("sous.executor.catalog")


class CatalogClient:
    def __init__(self, base_url: str, internal_secret: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = internal_secret
        self.timeout_s = timeout_s

    def _auth(self, workspace_id: str) -> ContextAuth:
        context = InternalContext(workspace_id=workspace_id, user_id="executor", scopes=("*",), auth_type="internal")
        return ContextAuth(context, self.secret, "catalog")

    async def _get(self, workspace_id: str, path: str) -> dict[str, Any] | None:
        if not self.base_url:
            return None
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(f"{self.base_url}{path}", auth=self._auth(workspace_id))
        except httpx.HTTPError as exc:
            logger.info("catalog read-through %s failed: %s", path, exc)
            return None
        if response.status_code != 200:
            return None
        body = response.json()
        return body if isinstance(body, dict) else None

    async def recipe(self, workspace_id: str, template_id: str) -> dict[str, Any] | None:
        body = await self._get(workspace_id, f"/api/workflow-recipes/{template_id}")
        if body is None:
            return None
        recipe = body.get("recipe", body)
        return recipe if isinstance(recipe, dict) and recipe.get("template_id") else None

    async def agent(self, workspace_id: str, agent_id: str) -> dict[str, Any] | None:
        body = await self._get(workspace_id, f"/api/agents/{agent_id}")
        if body is None:
            return None
        agent = body.get("agent", body)
        return agent if isinstance(agent, dict) and agent.get("id") else None

    async def recipe_revision(self, workspace_id: str, template_id: str, revision: int) -> dict[str, Any] | None:
        """The recipe as it was at `revision` (from the catalog's history), or None."""
        body = await self._get(workspace_id, f"/api/workflow-recipes/{template_id}/history?revision={revision}")
        recipe = (body or {}).get("recipe")
        return recipe if isinstance(recipe, dict) and recipe.get("template_id") else None

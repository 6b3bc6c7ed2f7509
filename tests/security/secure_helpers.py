"""Helpers of the secrets, egress, quotas and webhooks attack tests: agents and recipes through the gateway."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import Api, eventually


async def agent(
    api: Api,
    model_config: dict[str, Any],
    *,
    skills: list[str] | None = None,
    description: str = "",
    iterations: int = 3,
) -> dict[str, Any]:
    body = {
        "name": f"agent-{uuid.uuid4().hex[:6]}",
        "description": description or "security test agent",
        "model_config": model_config,
        "skills": skills or [],
        "configuration": {"max_iterations": iterations},
    }
    return await api.ok("POST", "/api/agents", 201, json=body)  # type: ignore[no-any-return]


async def recipe(api: Api, agent_id: str, prompt: str = "Hello", **extra: Any) -> dict[str, Any]:
    template_id = f"r-{uuid.uuid4().hex[:8]}"
    body = {
        "template_id": template_id,
        "name": f"Recipe {template_id}",
        "description": "security test recipe",
        "template_definition": {},
        "steps": [{"step_id": "s1", "order": 1, "agent_id": agent_id, "prompt_template": prompt}],
        "execution_config": {"auto_learning": False, "max_retries": 0},
        **extra,
    }
    created = await api.ok("POST", "/api/workflow-recipes", 201, json=body)

    async def known() -> bool:
        response = await api.request("GET", f"/api/workflow-recipes/{template_id}/executions")
        return response.status_code == 200

    await eventually(known, what=f"recipe {template_id} at the executor")
    return created["recipe"]  # type: ignore[no-any-return]


async def wait_finished(api: Api, template_id: str, execution_id: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        status = await api.ok("GET", f"/api/workflow-recipes/{template_id}/executions/{execution_id}")
        return status if status["status"] in ("completed", "failed", "cancelled") else None

    return await eventually(finished, timeout_s=90, what=f"execution {execution_id}")  # type: ignore[no-any-return]


async def run(api: Api, template_id: str) -> dict[str, Any]:
    started = await api.ok("POST", f"/api/workflow-recipes/{template_id}/execute", 202, json={"input_data": {}})
    return await wait_finished(api, template_id, started["recipe_execution_id"])


async def run_agent(api: Api, model_config: dict[str, Any], prompt: str = "Hello", **agent_kw: Any) -> dict[str, Any]:
    """A one-step recipe with a new agent of this configuration, run to its end."""
    created = await agent(api, model_config, **agent_kw)
    made = await recipe(api, created["id"], prompt)
    return await run(api, made["template_id"])

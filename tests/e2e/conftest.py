"""The whole system as processes: a Stack of its own (PostgreSQL, broker, model server, five services)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sous_gateway.tokens import mint_development_token
from sous_local.stack import Stack
from sous_local.testing import eventually


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    state = Path(tempfile.mkdtemp(prefix="sous-e2e-"))
    broker = "kafka" if os.environ.get("SOUS_TEST_BROKER") == "kafka" else "embedded"
    env = {
        "SOUS_LEASE_TTL_S": "4",
        "SOUS_HEARTBEAT_INTERVAL_S": "1",
        "SOUS_RATE_LIMIT_PER_MINUTE": "100000",
        "SOUS_RATE_LIMIT_BURST": "10000",
    }
    env |= {f"SOUS_{k}": "100000" for k in ("WORKSPACE_RATE_LIMIT_PER_MINUTE", "WORKSPACE_RATE_LIMIT_BURST")}
    env |= {f"SOUS_{k}": "100000" for k in ("AUTH_FAILURE_LIMIT_PER_MINUTE", "AUTH_FAILURE_BURST")}
    # The marketplace's quality gate: a recipe scored below 0.85 is refused; unassessed recipes pass (runs: 0),
    # so tests about other things approve listings of recipes that never ran.
    env |= {"SOUS_MARKETPLACE_GATE_MIN_SCORE": "0.85", "SOUS_MARKETPLACE_GATE_MIN_RUNS": "0"}
    # Promotion: replays of an unchanged-quality version score within a few hundredths of the runs they replay
    # (durations differ from run to run); a version that breaks a step scores far lower.
    env |= {"SOUS_PROMOTION_QUALITY_TOLERANCE": "0.05"}
    running = Stack(state, broker=broker, env=env, durable_postgres=False, ports="auto", quiet=True)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(state, ignore_errors=True)


class Api:
    """A caller of one workspace, through the gateway."""

    def __init__(self, client: httpx.AsyncClient, token: str, workspace: str) -> None:
        self.client = client
        self.workspace = workspace
        self.headers = {"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace}

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        response = await self.request(method, path, **kw)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture
def make_api(stack: Stack, gateway: httpx.AsyncClient) -> Callable[..., Api]:
    def make(workspace: str | None = None, roles: tuple[str, ...] = ("admin",), user: str | None = None) -> Api:
        ws = workspace or f"ws-{uuid.uuid4().hex[:8]}"
        token = mint_development_token(
            user or f"user-{uuid.uuid4().hex[:6]}", [ws], roles=roles, secret=stack.jwt_secret
        )
        return Api(gateway, token, ws)

    return make


async def create_agent(api: Api, name: str = "writer", skills: list[str] | None = None) -> dict[str, Any]:
    body = {
        "name": name,
        "description": "writes things",
        "model_config": {"provider": "offline", "model_id": "sous-offline-1"},
        "skills": skills or [],
        "configuration": {"max_iterations": 4},
    }
    return await api.ok("POST", "/api/agents", 201, json=body)  # type: ignore[no-any-return]


async def create_recipe(api: Api, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {
        "template_id": extra.pop("template_id", f"r-{uuid.uuid4().hex[:8]}"),
        "name": extra.pop("name", f"Recipe {uuid.uuid4().hex[:6]}"),
        "description": "an end-to-end recipe",
        "template_definition": {},
        "steps": steps,
        **extra,
    }
    created = await api.ok("POST", "/api/workflow-recipes", 201, json=body)
    return created["recipe"]  # type: ignore[no-any-return]


async def wait_for_recipe_at_executor(api: Api, template_id: str) -> None:
    """The executor learns recipes from catalog events; wait until it can run this one."""

    async def listed() -> bool:
        response = await api.get(f"/api/workflow-recipes/{template_id}/executions")
        return response.status_code == 200

    await eventually(listed, what=f"recipe {template_id} at the executor")


async def run_to_end(api: Api, template_id: str, input_data: dict[str, Any] | None = None) -> dict[str, Any]:
    await wait_for_recipe_at_executor(api, template_id)
    started = await api.ok(
        "POST", f"/api/workflow-recipes/{template_id}/execute", 202, json={"input_data": input_data or {}}
    )
    execution_id = started["recipe_execution_id"]

    async def finished() -> dict[str, Any] | None:
        status = await api.ok("GET", f"/api/workflow-recipes/{template_id}/executions/{execution_id}")
        return status if status["status"] in ("completed", "failed", "cancelled") else None

    return await eventually(finished, timeout_s=90, what=f"execution {execution_id} to finish")  # type: ignore[no-any-return]

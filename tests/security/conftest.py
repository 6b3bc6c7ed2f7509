"""A stack of its own for attack tests, through the gateway as an attacker would call it.

Generic fixtures only: `stack` (every service as a process, on settings tuned so limits are reachable in
a test: see SECURITY_ENV), `gateway` (an HTTP client on it), `make_api` (a caller of a fresh workspace),
`eventually` and helpers that create objects through the public API.
"""

from __future__ import annotations

import json
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

from .provider_double import ProviderDouble, free_port

# The gateway sees every test client as 127.0.0.1 and believes X-Forwarded-For from it, so a test can act
# as many distinct clients; limits are small enough to reach and each test uses workspaces of its own.
SECURITY_ENV: dict[str, str] = {
    "SOUS_RATE_LIMIT_PER_MINUTE": "100000",
    "SOUS_RATE_LIMIT_BURST": "10000",
    "SOUS_WORKSPACE_RATE_LIMIT_PER_MINUTE": "150",
    "SOUS_WORKSPACE_RATE_LIMIT_BURST": "150",
    "SOUS_AUTH_FAILURE_LIMIT_PER_MINUTE": "6",
    "SOUS_AUTH_FAILURE_BURST": "5",
    "SOUS_TRUSTED_PROXIES": "127.0.0.1",
    "SOUS_STREAM_MAX_PER_CALLER": "2",
    "SOUS_STREAM_MAX_PER_WORKSPACE": "3",
    "SOUS_API_KEY_MAX_PER_WORKSPACE": "5",
}

# Secrets, egress, quotas and webhooks (test_secrets_*, test_egress_*, test_quotas_*, test_webhooks_*): a
# provider double is the one external origin allowed; fixed workspaces carry an env grant and quotas.
PROVIDER_PORT = free_port()
GRANTED_WORKSPACE = f"ws-granted-{uuid.uuid4().hex[:6]}"
RUNS_QUOTA_WORKSPACE = f"ws-runs-{uuid.uuid4().hex[:6]}"
TOKENS_QUOTA_WORKSPACE = f"ws-tokens-{uuid.uuid4().hex[:6]}"
GRANTED_ENV, GRANTED_VALUE = "SOUS_TEST_GRANTED_KEY", f"granted-{uuid.uuid4().hex}"
SECURITY_ENV.update(
    {
        "SOUS_ALLOWED_MODEL_ORIGINS": f"http://127.0.0.1:{PROVIDER_PORT}",
        "SOUS_HTTP_TOOL_ALLOWLIST": f"http://127.0.0.1:{PROVIDER_PORT}",
        "SOUS_ENV_GRANTS": json.dumps({GRANTED_WORKSPACE: [GRANTED_ENV]}),
        GRANTED_ENV: GRANTED_VALUE,
        "SOUS_WORKSPACE_QUOTAS": json.dumps(
            {RUNS_QUOTA_WORKSPACE: {"runs_per_day": 2}, TOKENS_QUOTA_WORKSPACE: {"max_tokens": 5}}
        ),
        "SOUS_WEBHOOK_RATE_LIMIT_PER_MINUTE": "3",
        # Listings here are about secrets, not quality: the gate admits recipes that never ran.
        "SOUS_MARKETPLACE_GATE_MIN_RUNS": "0",
    }
)


@pytest.fixture(scope="session")
def provider() -> Iterator[ProviderDouble]:
    double = ProviderDouble(PROVIDER_PORT)
    double.start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    state = Path(tempfile.mkdtemp(prefix="sous-security-"))
    broker = "kafka" if os.environ.get("SOUS_TEST_BROKER") == "kafka" else "embedded"
    running = Stack(state, broker=broker, env=SECURITY_ENV, durable_postgres=False, ports="auto", quiet=True)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(state, ignore_errors=True)


class Api:
    """A caller of one workspace, through the gateway."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], workspace: str) -> None:
        self.client = client
        self.workspace = workspace
        self.headers = headers

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        response = await self.request(method, path, **kw)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def with_key(self, key: str) -> Api:
        return Api(self.client, {"X-API-Key": key, "X-Workspace-ID": self.workspace}, self.workspace)


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client


def new_workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def token_for(stack: Stack) -> Callable[..., str]:
    def mint(user: str, workspaces: list[str], roles: Any = (), **claims: Any) -> str:
        extra = {"roles": roles} if isinstance(roles, dict) else None
        return mint_development_token(
            user, workspaces, roles=() if extra else roles, secret=stack.jwt_secret, extra_claims=extra
        )

    return mint


@pytest.fixture
def make_api(gateway: httpx.AsyncClient, token_for: Callable[..., str]) -> Callable[..., Api]:
    def make(workspace: str | None = None, roles: tuple[str, ...] = ("admin",), user: str | None = None) -> Api:
        ws = workspace or new_workspace()
        token = token_for(user or f"user-{uuid.uuid4().hex[:6]}", [ws], roles)
        return Api(gateway, {"Authorization": f"Bearer {token}", "X-Workspace-ID": ws}, ws)

    return make


async def recipe_with_agent(api: Api, prompt: str = "Hello") -> str:
    """An agent and a one-step recipe in the caller's workspace, known to the executor; its template id."""
    agent = await api.ok(
        "POST",
        "/api/agents",
        201,
        json={
            "name": f"sec-{uuid.uuid4().hex[:4]}",
            "description": "security test agent",
            "model_config": {"provider": "offline", "model_id": "sous-offline-1"},
            "skills": [],
            "configuration": {"max_iterations": 2},
        },
    )
    template_id = f"r-{uuid.uuid4().hex[:8]}"
    await api.ok(
        "POST",
        "/api/workflow-recipes",
        201,
        json={
            "template_id": template_id,
            "name": f"Recipe {template_id}",
            "description": "security test recipe",
            "template_definition": {},
            "steps": [{"step_id": "s1", "order": 1, "agent_id": agent["id"], "prompt_template": prompt}],
            "execution_config": {"auto_learning": False},
        },
    )

    async def known() -> bool:
        response = await api.request("GET", f"/api/workflow-recipes/{template_id}/executions")
        return response.status_code == 200

    await eventually(known, what=f"recipe {template_id} at the executor")
    return template_id


async def start_execution(api: Api, template_id: str) -> str:
    started = await api.ok("POST", f"/api/workflow-recipes/{template_id}/execute", 202, json={"input_data": {}})
    return str(started["recipe_execution_id"])

"""Finding 10: the gateway authorized one path and forwarded another; services did not re-check scopes."""

from __future__ import annotations

import httpx
import pytest

from sous_local.stack import Stack
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_request

from .conftest import Api, new_workspace

pytestmark = pytest.mark.e2e

RECIPES = "/api/workflow-recipes"


async def _raw(api: Api, method: str, target: str) -> httpx.Response:
    """Send the request target byte for byte: httpx would otherwise resolve the dot segments itself."""
    request = api.client.build_request(method, f"{api.client.base_url}/api/x", headers=api.headers)
    request.extensions["target"] = target.encode()
    return await api.client.send(request)


@pytest.mark.parametrize(
    "target",
    [
        f"{RECIPES}/r-1/executions/..",  # authorized as an executor route, normalized into a catalog one
        f"{RECIPES}/r-1/executions/%2e%2e",
        f"{RECIPES}/r-1/executions/%2E.",
        f"{RECIPES}/r-1/executions/%252e%252e",
        f"{RECIPES}/r-1/executions/./events",
        f"{RECIPES}/install/..%2f..%2fagents",
        f"{RECIPES}/install/x%2Fy",
        f"{RECIPES}/install/x%5cy",
        f"{RECIPES}/install/x%252fy",
        "/api/agents/a\\b",
    ],
)
async def test_dot_segments_and_encoded_separators_are_refused(make_api, target: str):
    api = make_api()
    response = await _raw(api, "GET", target)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_path"), response.text


async def test_the_traversal_does_not_reach_the_catalog_with_an_executor_grant(make_api):
    admin = make_api()
    key = await admin.ok("POST", "/api/api-keys", 201, json={"name": "runner", "scopes": ["executions:read"]})
    runner = admin.with_key(key["key"])
    direct = await runner.request("GET", f"{RECIPES}/r-1")
    assert direct.status_code == 403  # the key may not read recipes
    smuggled = await _raw(runner, "GET", f"{RECIPES}/r-1/executions/..")
    assert smuggled.status_code == 400


@pytest.mark.parametrize(
    ("service", "method", "path", "body"),
    [
        ("executor", "POST", f"{RECIPES}/r-1/execute", b'{"input_data": {}}'),
        ("executor", "GET", f"{RECIPES}/r-1/executions", b""),
        ("quality", "POST", f"{RECIPES}/r-1/assess-quality", b'{"execution_id": "e-1"}'),
        ("marketplace", "POST", f"{RECIPES}/submit", b'{"recipe_id": "r-1"}'),
    ],
)
async def test_services_refuse_a_context_without_the_routes_scope(
    stack: Stack, service: str, method: str, path: str, body: bytes
):
    # As if the gateway had routed a request it authorized for another route: a valid, bound context whose
    # scopes do not include the one this route needs.
    context = InternalContext(workspace_id=new_workspace(), user_id="intruder", scopes=("recipes:read",))
    header = sign_request(context, stack.internal_secret, method=method, target=path, body=body, service=service)
    async with httpx.AsyncClient(base_url=stack.urls[service], timeout=30) as client:
        response = await client.request(
            method, path, content=body, headers={CONTEXT_HEADER: header, "Content-Type": "application/json"}
        )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "missing_scope"

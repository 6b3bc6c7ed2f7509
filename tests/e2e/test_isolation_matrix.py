"""Every route of the public OpenAPI document, called by workspace B on workspace A's objects."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from .conftest import Api, create_agent, create_recipe, eventually, run_to_end, wait_for_recipe_at_executor

pytestmark = pytest.mark.e2e

WORKSPACE_LESS = {"/api/webhooks/recipe/{webhook_id}"}  # third parties call it; the HMAC secret guards it


def _value_for(path: str, name: str, a: dict[str, str]) -> str:
    if name in ("revision", "order"):
        return "1"  # a number within A's own recipe or execution (A's template id is what B must not reach)
    if path.startswith("/api/agents/"):
        return a["agent_id"]
    if path.startswith("/api/api-keys/"):
        return a["key_id"]
    if path.startswith("/api/marketplace/") or "/install/" in path:
        return a["listing_id"]
    if "execution" in name:
        return a["execution_id"]
    return a["template_id"]


def _body_for(method: str, path: str, a: dict[str, str]) -> Any:
    if method == "PUT":
        return {"name": f"taken over {uuid.uuid4().hex[:4]}"}
    if path.endswith(("/assess-quality", "/learn")):
        return {"execution_id": a["execution_id"]}
    if path.endswith("/reject"):
        return {"reason": "not yours"}
    if path.endswith("/execute"):
        return {"input_data": {}}
    if path.endswith("/submit"):
        return {"recipe_id": a["template_id"]}
    if path.endswith("/save-as-recipe"):
        return {"template_id": f"taken-over-{uuid.uuid4().hex[:6]}"}
    return {}


async def _workspace_a(make_api) -> tuple[Api, dict[str, str]]:
    api = make_api()
    agent = await create_agent(api, name=f"iso-{uuid.uuid4().hex[:4]}")
    recipe = await create_recipe(
        api,
        [{"step_id": "s1", "order": 1, "agent_id": agent["id"], "prompt_template": "Hello"}],
        execution_config={"auto_learning": False},
    )
    execution = await run_to_end(api, recipe["template_id"])

    async def submitted():
        response = await api.post("/api/workflow-recipes/submit", json={"recipe_id": recipe["template_id"]})
        return response.json() if response.status_code == 200 else None

    listing = await eventually(submitted, what="the marketplace to know A's recipe")
    key = await api.ok("POST", "/api/api-keys", 201, json={"name": "a-key", "scopes": ["recipes:read"]})
    secret_name, secret_value = f"a-secret-{uuid.uuid4().hex[:6]}", f"sk-a-{uuid.uuid4().hex}"
    await api.ok("PUT", f"/api/secrets/{secret_name}", 201, json={"value": secret_value})
    return api, {
        "secret_name": secret_name,
        "secret_value": secret_value,
        "agent_id": agent["id"],
        "template_id": recipe["template_id"],
        "execution_id": execution["execution_id"],
        "listing_id": listing["item_id"],
        "key_id": key["id"],
    }


async def test_workspace_b_never_reaches_workspace_a(make_api, gateway: httpx.AsyncClient):
    owner, a = await _workspace_a(make_api)
    intruder = make_api(roles=("admin",))
    document = (await gateway.get("/openapi.json")).json()
    checked: list[tuple[str, str, int]] = []
    deletes: list[tuple[str, str]] = []
    for path, operations in sorted(document["paths"].items()):
        if not path.startswith("/api/") or path in WORKSPACE_LESS or path.startswith("/api/secrets/"):
            continue  # secrets are names within a workspace: checked on their own below
        for method in operations:
            method = method.upper()
            if method not in {"GET", "POST", "PUT", "DELETE", "PATCH"}:
                continue
            names = re.findall(r"{([^}]+)}", path)
            if not names:
                if method == "GET":
                    response = await intruder.get(path)
                    assert response.status_code < 500, (path, response.text)
                    for label, value in a.items():
                        assert value not in response.text, f"GET {path} shows A's {label}"
                    checked.append((method, path, response.status_code))
                elif path.endswith("/submit"):
                    response = await intruder.post(path, json=_body_for(method, path, a))
                    assert response.status_code in (403, 404), (path, response.status_code, response.text)
                    checked.append((method, path, response.status_code))
                continue
            concrete = path
            for name in names:
                concrete = concrete.replace("{" + name + "}", _value_for(path, name, a))
            if method == "DELETE":
                deletes.append((method, concrete))
                continue
            kwargs: dict[str, Any] = {}
            if method in ("POST", "PUT", "PATCH"):
                kwargs["json"] = _body_for(method, path, a)
            response = await intruder.request(method, concrete, **kwargs)
            assert response.status_code in (403, 404), (method, path, response.status_code, response.text)
            checked.append((method, path, response.status_code))
    for method, concrete in deletes:
        response = await intruder.request(method, concrete)
        assert response.status_code in (403, 404), (method, concrete, response.status_code, response.text)
        checked.append((method, concrete, response.status_code))

    # B using A's secret name reaches only its own namespace; A's secret stays as it was.
    name = a["secret_name"]
    before = await owner.ok("GET", f"/api/secrets/{name}")
    assert (await intruder.get(f"/api/secrets/{name}")).status_code == 404
    assert (await intruder.request("DELETE", f"/api/secrets/{name}")).status_code == 404
    assert (await intruder.put(f"/api/secrets/{name}", json={"value": "taken over"})).status_code == 201
    listed = await intruder.get("/api/secrets")
    assert [s["name"] for s in listed.json()["items"]] == [name] and a["secret_value"] not in listed.text
    assert await owner.ok("GET", f"/api/secrets/{name}") == before

    assert len(checked) >= 30, checked  # the document really listed the public API
    # A's objects are all still there and unchanged.
    recipe = await owner.ok("GET", f"/api/workflow-recipes/{a['template_id']}")
    assert not recipe["name"].startswith("taken over")
    await owner.ok("GET", f"/api/agents/{a['agent_id']}")
    keys = await owner.ok("GET", "/api/api-keys")
    assert a["key_id"] in {k["id"] for k in keys["items"]}


SERVICE_ROUTES = {
    "catalog": "/api/agents",
    "executor": "/api/tools",
    "quality": "/api/workflow-recipes/anything/suggestions",
    "marketplace": "/api/marketplace/listings",
}


async def test_a_service_port_refuses_requests_without_the_signed_context(stack):
    forged = "eyJ3b3Jrc3BhY2VfaWQiOiJ4IiwidXNlcl9pZCI6InkifQ.c2lnbmF0dXJl"
    async with httpx.AsyncClient(timeout=10) as client:
        for name, path in SERVICE_ROUTES.items():
            bare = await client.get(f"{stack.urls[name]}{path}")
            faked = await client.get(f"{stack.urls[name]}{path}", headers={"X-Sous-Context": forged})
            assert (bare.status_code, faked.status_code) == (401, 401), (name, bare.text, faked.text)
            assert bare.json()["code"] == "invalid_internal_context"


async def test_workspace_b_cannot_open_workspace_a_live_stream(make_api):
    owner, intruder = make_api(), make_api()
    agent = await create_agent(owner, name=f"iso-{uuid.uuid4().hex[:4]}")
    recipe = await create_recipe(
        owner,
        [{"step_id": "s1", "order": 1, "agent_id": agent["id"], "prompt_template": "Slowly [[latency:30000]]"}],
        execution_config={"auto_learning": False},
    )
    template_id = recipe["template_id"]
    await wait_for_recipe_at_executor(owner, template_id)
    started = await owner.ok("POST", f"/api/workflow-recipes/{template_id}/execute", 202, json={"input_data": {}})
    execution_id = started["recipe_execution_id"]
    path = f"/api/workflow-recipes/{template_id}/executions/{execution_id}/events"
    # While A's run is live: under A's recipe, and under a recipe id of B's own.
    theirs = await intruder.get(path)
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    own_agent = await create_agent(intruder, name="b-agent")
    own = await create_recipe(
        intruder, [{"step_id": "s1", "order": 1, "agent_id": own_agent["id"], "prompt_template": "x"}]
    )
    await wait_for_recipe_at_executor(intruder, own["template_id"])
    mixed = await intruder.get(f"/api/workflow-recipes/{own['template_id']}/executions/{execution_id}/events")
    assert (mixed.status_code, mixed.json()["code"]) == (404, "not_found")
    await owner.post(f"/api/workflow-recipes/{template_id}/executions/{execution_id}/cancel", json={})

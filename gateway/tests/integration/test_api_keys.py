"""API keys through the real gateway: shown once, scoped, bound to a workspace, revocable at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from sous_gateway.adapters.tables import api_keys

pytestmark = pytest.mark.integration

KEYS = "/api/api-keys"
RECIPES = "/api/workflow-recipes"


@pytest.fixture
async def gw(make_gateway):
    return await make_gateway()


@pytest.fixture
def admin_headers(mint, workspace, auth):
    return auth(mint(sub="admin-1", roles=["admin"]), workspace)


async def _create(gw, headers, scopes, **extra):
    response = await gw.client.post(KEYS, headers=headers, json={"name": "ci", "scopes": scopes, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def test_key_lifecycle_secret_shown_once_and_never_logged(gw, admin_headers, workspace, caplog):
    caplog.set_level(logging.DEBUG)
    created = await _create(gw, admin_headers, ["recipes:read", "executions:run"], expires_in_days=30)
    key = created["key"]
    secret = key.split("_", 2)[2]
    assert key.startswith(f"sous_{created['id']}_") and len(secret) == 32
    assert created["workspace_id"] == workspace
    assert created["scopes"] == ["recipes:read", "executions:run"]
    assert created["expires_at"] is not None

    for form in ({"X-API-Key": key}, {"Authorization": f"ApiKey {key}"}):
        response = await gw.client.get(f"{RECIPES}?search=a%20b", headers=form)
        assert response.status_code == 200, response.text
        context = response.json()["context"]
        assert context["user_id"] == f"key:{created['id']}"
        assert (context["auth_type"], context["workspace_id"]) == ("api_key", workspace)
        assert context["scopes"] == ["recipes:read", "executions:run"]
        assert context["roles"] == []
        assert "x-api-key" not in response.json()["headers"]
        assert secret not in response.text

    await gw.components.api_keys.drain()
    listing = await gw.client.get(KEYS, headers=admin_headers)
    assert listing.status_code == 200
    assert secret not in listing.text and "key" not in listing.json()["items"][0]
    item = next(i for i in listing.json()["items"] if i["id"] == created["id"])
    assert item["last_used_at"] is not None and item["revoked_at"] is None

    revoked = await gw.client.delete(f"{KEYS}/{created['id']}", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert secret not in revoked.text
    response = await gw.client.get(RECIPES, headers={"X-API-Key": key})
    assert (response.status_code, response.json()["code"]) == (401, "api_key_revoked")

    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert created["id"] in logged  # the logs do mention the key, by id
    assert secret not in logged


async def test_expired_key_is_refused_at_once(gw, admin_headers):
    created = await _create(gw, admin_headers, ["recipes:read"], expires_in_days=1)
    assert (await gw.client.get(RECIPES, headers={"X-API-Key": created["key"]})).status_code == 200
    async with gw.components.engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(update(api_keys).where(api_keys.c.id == created["id"]).values(expires_at=past))
    response = await gw.client.get(RECIPES, headers={"X-API-Key": created["key"]})
    assert (response.status_code, response.json()["code"]) == (401, "api_key_expired")


async def test_key_without_the_scope_is_403(gw, admin_headers):
    created = await _create(gw, admin_headers, ["recipes:read"])
    headers = {"X-API-Key": created["key"]}
    response = await gw.client.post(f"{RECIPES}/r1/execute", headers=headers, json={})
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
    response = await gw.client.get(KEYS, headers=headers)
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")


async def test_key_workspace_is_fixed(gw, admin_headers, workspace):
    created = await _create(gw, admin_headers, ["recipes:read"])
    response = await gw.client.get(RECIPES, headers={"X-API-Key": created["key"], "X-Workspace-ID": "ws-other"})
    assert (response.status_code, response.json()["code"]) == (403, "workspace_forbidden")
    response = await gw.client.get(RECIPES, headers={"X-API-Key": created["key"], "X-Workspace-ID": workspace})
    assert response.status_code == 200


async def test_wrong_or_malformed_keys(gw, admin_headers):
    created = await _create(gw, admin_headers, ["recipes:read"])
    key_id = created["id"]
    for bad in (f"sous_{key_id}_{'A' * 32}", "sous_0123456789abcdef_" + "b" * 32, "sous_nope", "garbage"):
        response = await gw.client.get(RECIPES, headers={"X-API-Key": bad})
        assert (response.status_code, response.json()["code"]) == (401, "invalid_api_key")


async def test_create_validation_and_permissions(gw, admin_headers, mint, workspace, auth):
    response = await gw.client.post(KEYS, headers=admin_headers, json={"name": "x", "scopes": ["recipes:read", "root"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "scopes[1]"
    response = await gw.client.post(KEYS, headers=admin_headers, json={"name": "x", "scopes": []})
    assert response.status_code == 422
    member = auth(mint(sub="member"), workspace)
    response = await gw.client.post(KEYS, headers=member, json={"name": "x", "scopes": ["recipes:read"]})
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
    # a key-admin key may create keys, but never with more than it has itself
    manager = await _create(gw, admin_headers, ["keys:admin", "recipes:read"])
    as_key = {"X-API-Key": manager["key"]}
    response = await gw.client.post(KEYS, headers=as_key, json={"name": "x", "scopes": ["recipes:write"]})
    assert (response.status_code, response.json()["code"]) == (403, "scope_escalation")
    child = await _create(gw, as_key, ["recipes:read"])
    assert child["workspace_id"] == workspace


async def test_keys_of_another_workspace_are_invisible(gw, admin_headers, mint, auth):
    created = await _create(gw, admin_headers, ["recipes:read"])
    other = auth(mint(sub="admin-2", roles=["admin"], workspaces=["ws-elsewhere"]), "ws-elsewhere")
    response = await gw.client.delete(f"{KEYS}/{created['id']}", headers=other)
    assert response.status_code == 404
    assert created["id"] not in (await gw.client.get(KEYS, headers=other)).text
    response = await gw.client.get(RECIPES, headers={"X-API-Key": created["key"]})
    assert response.status_code == 200


async def test_api_key_routes_need_credentials(gw):
    for method, path in (("GET", KEYS), ("POST", KEYS), ("DELETE", f"{KEYS}/abc")):
        response = await gw.client.request(method, path, json={"name": "x", "scopes": ["recipes:read"]})
        assert (response.status_code, response.json()["code"]) == (401, "missing_credentials")
    await asyncio.sleep(0)

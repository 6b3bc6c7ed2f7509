"""Finding 8: keys minted by keys outlived their parents; no cap on keys; limits only per key."""

from __future__ import annotations

from datetime import datetime

import pytest

from .conftest import Api

pytestmark = pytest.mark.e2e

ADMIN_SCOPES = ["keys:admin", "recipes:read"]


async def test_a_child_key_never_outlives_its_parent(make_api):
    admin: Api = make_api()
    parent = await admin.ok(
        "POST", "/api/api-keys", 201, json={"name": "p", "scopes": ADMIN_SCOPES, "expires_in_days": 1}
    )
    as_parent = admin.with_key(parent["key"])
    forever = await as_parent.ok("POST", "/api/api-keys", 201, json={"name": "c", "scopes": ["recipes:read"]})
    longer = await as_parent.ok(
        "POST", "/api/api-keys", 201, json={"name": "c2", "scopes": ["recipes:read"], "expires_in_days": 365}
    )
    limit = datetime.fromisoformat(parent["expires_at"])
    for child in (forever, longer):
        assert child["expires_at"] is not None
        assert datetime.fromisoformat(child["expires_at"]) <= limit


async def test_revoking_a_key_revokes_what_it_minted_transitively(make_api):
    admin: Api = make_api()
    parent = await admin.ok("POST", "/api/api-keys", 201, json={"name": "p", "scopes": ADMIN_SCOPES})
    child = await admin.with_key(parent["key"]).ok(
        "POST", "/api/api-keys", 201, json={"name": "c", "scopes": ADMIN_SCOPES}
    )
    grandchild = await admin.with_key(child["key"]).ok(
        "POST", "/api/api-keys", 201, json={"name": "g", "scopes": ["recipes:read"]}
    )
    sibling = await admin.ok("POST", "/api/api-keys", 201, json={"name": "s", "scopes": ["recipes:read"]})
    for key in (child, grandchild):
        assert (await admin.with_key(key["key"]).request("GET", "/api/agents")).status_code == 200
    await admin.ok("DELETE", f"/api/api-keys/{parent['id']}")
    for key in (parent, child, grandchild):
        response = await admin.with_key(key["key"]).request("GET", "/api/agents")
        assert (response.status_code, response.json()["code"]) == (401, "api_key_revoked"), key["name"]
    assert (await admin.with_key(sibling["key"]).request("GET", "/api/agents")).status_code == 200
    listed = {k["id"]: k for k in (await admin.ok("GET", "/api/api-keys"))["items"]}
    assert listed[grandchild["id"]]["revoked_at"] is not None and listed[sibling["id"]]["revoked_at"] is None


async def test_a_workspace_has_a_cap_on_active_keys(make_api):
    admin: Api = make_api()
    created = []
    for i in range(5):  # SOUS_API_KEY_MAX_PER_WORKSPACE in the security stack
        created.append(await admin.ok("POST", "/api/api-keys", 201, json={"name": f"k{i}", "scopes": ["recipes:read"]}))
    refused = await admin.request("POST", "/api/api-keys", json={"name": "one more", "scopes": ["recipes:read"]})
    assert (refused.status_code, refused.json()["code"]) == (409, "key_limit_reached")
    await admin.ok("DELETE", f"/api/api-keys/{created[0]['id']}")
    await admin.ok("POST", "/api/api-keys", 201, json={"name": "replacement", "scopes": ["recipes:read"]})


async def test_minting_more_keys_does_not_buy_a_workspace_more_requests(make_api):
    admin: Api = make_api()
    keys = [
        admin.with_key(
            (await admin.ok("POST", "/api/api-keys", 201, json={"name": f"k{i}", "scopes": ["recipes:read"]}))["key"]
        )
        for i in range(3)
    ]
    statuses: list[int] = []
    for i in range(400):  # far past the workspace's burst (150), far below any one key's (10000)
        response = await keys[i % len(keys)].request("GET", "/api/agents")
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["code"] == "rate_limited"
            break
    assert statuses[-1] == 429, "the workspace limit never applied"

"""Finding 7: JWT roles applied to every workspace in the token."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from sous_local.stack import Stack

from .conftest import new_workspace

pytestmark = pytest.mark.e2e

KEY_BODY = {"name": "ci", "scopes": ["recipes:read"]}


def _headers(token: str, workspace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace}


def _token(stack: Stack, workspaces: list[str], roles: object) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "workspaces": workspaces, "roles": roles, "iss": "sous-dev", "aud": "sous-api"}
    return jwt.encode({**claims, "iat": now, "exp": now + 600}, stack.jwt_secret, algorithm="HS256")


async def test_admin_of_one_workspace_cannot_mint_keys_in_another(gateway: httpx.AsyncClient, stack: Stack):
    w1, w2 = new_workspace(), new_workspace()
    token = _token(stack, [w1, w2], {w1: ["admin"], w2: ["member"]})
    refused = await gateway.post("/api/api-keys", json=KEY_BODY, headers=_headers(token, w2))
    assert (refused.status_code, refused.json()["code"]) == (403, "missing_scope")
    created = await gateway.post("/api/api-keys", json=KEY_BODY, headers=_headers(token, w1))
    assert created.status_code == 201, created.text
    assert created.json()["workspace_id"] == w1


async def test_a_flat_role_list_counts_only_for_a_single_workspace_token(gateway: httpx.AsyncClient, stack: Stack):
    w1, w2 = new_workspace(), new_workspace()
    # The shape that used to make the admin of w1 an admin of w2 as well.
    ambiguous = _token(stack, [w1, w2], ["admin"])
    response = await gateway.post("/api/api-keys", json=KEY_BODY, headers=_headers(ambiguous, w2))
    assert (response.status_code, response.json()["code"]) == (401, "ambiguous_roles")
    single = _token(stack, [w1], ["admin"])
    assert (await gateway.post("/api/api-keys", json=KEY_BODY, headers=_headers(single, w1))).status_code == 201

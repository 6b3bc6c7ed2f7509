"""Clerk, Auth0 and Keycloak tokens as each provider issues them, verified against a JWKS served over HTTP.

The keys are generated here and the JWKS is served by a local HTTP server; each provider's configuration is
the one docs/security.md gives for it.
"""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest

pytestmark = pytest.mark.integration

RECIPES = "/api/workflow-recipes"
KEYS = "/api/api-keys"


def _token(key: Any, claims: dict[str, Any]) -> str:
    now = int(time.time())
    body = {"iat": now, "nbf": now, "exp": now + 300, **claims}
    return pyjwt.encode(body, key.private, algorithm=key.alg, headers={"kid": key.kid})


def _headers(token: str, workspace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace}


async def test_clerk_session_token_with_organization_and_workspace_header(make_gateway, jwks_server, signing_keys):
    issuer = "https://clerk.example.test"
    gw = await make_gateway(
        jwt_algorithms=["RS256"],
        jwt_jwks_url=jwks_server.url,
        jwt_issuer=issuer,
        jwt_audience="",
        jwt_authorized_parties=["https://app.example.test"],
        jwt_workspaces_claim="org_id",
        jwt_roles_claim="org_role",
        jwt_role_map="org:admin=admin,org:member=member",
    )
    key = signing_keys["rsa1"]
    session = {"iss": issuer, "sub": "user_2abc", "azp": "https://app.example.test", "sid": "sess_1"}
    admin = _token(key, {**session, "org_id": "org_kitchen", "org_role": "org:admin"})
    response = await gw.client.get(RECIPES, headers=_headers(admin, "org_kitchen"))
    assert response.status_code == 200, response.text
    context = response.json()["context"]
    assert (context["workspace_id"], context["user_id"]) == ("org_kitchen", "user_2abc")
    assert "admin" in context["roles"] and "keys:admin" in context["scopes"]
    member = _token(key, {**session, "org_id": "org_kitchen", "org_role": "org:member"})
    assert (await gw.client.get(KEYS, headers=_headers(member, "org_kitchen"))).status_code == 403
    # another organization's id in X-Workspace-ID is refused
    other = await gw.client.get(RECIPES, headers=_headers(admin, "org_other"))
    assert (other.status_code, other.json()["code"]) == (403, "workspace_forbidden")
    # a token issued to a client this API does not trust
    foreign = _token(key, {**session, "azp": "https://evil.example.test", "org_id": "org_kitchen"})
    refused = await gw.client.get(RECIPES, headers=_headers(foreign, "org_kitchen"))
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_authorized_party")


async def test_auth0_namespaced_claims_and_audience(make_gateway, jwks_server, signing_keys):
    issuer = "https://tenant.eu.auth0.test/"
    gw = await make_gateway(
        jwt_algorithms=["RS256"],
        jwt_jwks_url=jwks_server.url,
        jwt_issuer=issuer,
        jwt_audience="https://api.sous.test",
        jwt_workspaces_claim="https://sous.test/workspaces",
        jwt_roles_claim="https://sous.test/roles",
    )
    key = signing_keys["rsa1"]
    claims = {
        "iss": issuer,
        "sub": "auth0|42",
        "aud": ["https://api.sous.test", "https://tenant.eu.auth0.test/userinfo"],
        "https://sous.test/workspaces": ["bakery"],
        "https://sous.test/roles": ["moderator"],
    }
    response = await gw.client.get(RECIPES, headers=_headers(_token(key, claims), "bakery"))
    assert response.status_code == 200, response.text
    assert response.json()["context"]["roles"] == ["moderator"]
    # the audience is required here: a token for another API is refused
    wrong = _token(key, {**claims, "aud": "https://other-api.test"})
    refused = await gw.client.get(RECIPES, headers=_headers(wrong, "bakery"))
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_audience")
    missing = _token(key, {k: v for k, v in claims.items() if k != "aud"})
    refused = await gw.client.get(RECIPES, headers=_headers(missing, "bakery"))
    assert (refused.status_code, refused.json()["code"]) == (401, "missing_claim")


async def test_keycloak_realm_roles_and_group_workspaces(make_gateway, jwks_server, signing_keys):
    issuer = "https://sso.example.test/realms/sous"
    gw = await make_gateway(
        jwt_algorithms=["RS256"],
        jwt_jwks_url=jwks_server.url,
        jwt_issuer=issuer,
        jwt_audience="sous-api",
        jwt_workspaces_claim="sous_workspaces",
        jwt_roles_claim="realm_access.roles",
        jwt_role_map="sous-admin=admin",
    )
    key = signing_keys["rsa1"]
    claims = {
        "iss": issuer,
        "sub": "f6c1-uuid",
        "aud": ["sous-api", "account"],
        "azp": "sous-console",
        "sous_workspaces": ["pantry"],
        "realm_access": {"roles": ["offline_access", "sous-admin"]},
    }
    response = await gw.client.get(KEYS, headers=_headers(_token(key, claims), "pantry"))
    assert response.status_code == 200, response.text
    context = (await gw.client.get(RECIPES, headers=_headers(_token(key, claims), "pantry"))).json()["context"]
    assert set(context["roles"]) == {"admin", "offline_access"}
    # issued by another realm
    other = _token(key, {**claims, "iss": "https://sso.example.test/realms/other"})
    refused = await gw.client.get(RECIPES, headers=_headers(other, "pantry"))
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_issuer")

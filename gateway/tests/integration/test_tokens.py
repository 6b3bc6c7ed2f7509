"""Bearer tokens through the real gateway: every failure is 401 with a clear code."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization

pytestmark = pytest.mark.integration

RECIPES = "/api/workflow-recipes"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
async def gw(make_gateway, jwks_server):
    return await make_gateway(
        jwt_algorithms=["HS256", "RS256", "ES256"], jwt_jwks_url=jwks_server.url, jwks_min_refresh_interval_s=60.0
    )


async def test_valid_tokens_reach_the_service_with_a_signed_context(gw, mint, signing_keys, workspace, auth):
    for key in (None, signing_keys["rsa1"], signing_keys["ec1"]):
        response = await gw.client.get(RECIPES, headers=auth(mint(key=key, sub="alice"), workspace))
        assert response.status_code == 200, response.text
        echo = response.json()
        assert echo["service"] == "catalog"
        context = echo["context"]
        assert context["user_id"] == "alice"
        assert context["workspace_id"] == workspace
        assert context["auth_type"] == "jwt"
        assert "recipes:read" in context["scopes"] and "keys:admin" not in context["scopes"]
        assert context["request_id"] == response.headers["x-request-id"]
        assert "authorization" not in echo["headers"]


async def test_leeway_accepts_a_token_expired_seconds_ago(gw, mint, workspace, auth):
    token = mint(exp=int(time.time()) - 5, iat=int(time.time()) - 100, nbf=int(time.time()) - 100)
    assert (await gw.client.get(RECIPES, headers=auth(token, workspace))).status_code == 200


def _forged_none(mint) -> str:
    token = mint()
    _, payload, _ = token.split(".")
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."


def _hs_signed_with_public_key(mint, key) -> str:
    """Algorithm confusion: an HS256 token whose HMAC key is the RSA public key (PEM)."""
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": key.kid})
    now = int(time.time())
    payload = _b64({"sub": "mallory", "workspaces": ["x"], "iss": "sous-dev", "aud": "sous-api", "exp": now + 60})
    import hashlib
    import hmac

    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("expired", "token_expired"),
        ("not_yet_valid", "token_not_yet_valid"),
        ("wrong_issuer", "invalid_issuer"),
        ("wrong_audience", "invalid_audience"),
        ("bad_signature_hs", "invalid_signature"),
        ("bad_signature_rs", "invalid_signature"),
        ("alg_none", "algorithm_not_allowed"),
        ("alg_not_configured", "algorithm_not_allowed"),
        ("hs_rs_confusion", "invalid_signature"),
        ("unknown_kid", "unknown_key_id"),
        ("no_kid", "unknown_key_id"),
        ("garbage", "invalid_token"),
        ("no_sub", "missing_claim"),
        ("no_exp", "missing_claim"),
    ],
)
async def test_token_failures_are_401_with_a_code(gw, mint, signing_keys, workspace, case, code):
    now = int(time.time())
    token = {
        "expired": lambda: mint(exp=now - 120, iat=now - 600, nbf=now - 600),
        "not_yet_valid": lambda: mint(nbf=now + 120),
        "wrong_issuer": lambda: mint(iss="someone-else"),
        "wrong_audience": lambda: mint(aud="another-api"),
        "bad_signature_hs": lambda: mint(secret="not-the-gateway-secret-at-all-0123456789"),
        "bad_signature_rs": lambda: pyjwt.encode(
            pyjwt.decode(mint(), options={"verify_signature": False}),
            signing_keys["rogue"].private,
            algorithm="RS256",
            headers={"kid": signing_keys["rsa1"].kid},
        ),
        "alg_none": lambda: _forged_none(mint),
        "alg_not_configured": lambda: pyjwt.encode({"sub": "x", "exp": now + 60}, "s" * 64, algorithm="HS512"),
        "hs_rs_confusion": lambda: _hs_signed_with_public_key(mint, signing_keys["rsa1"]),
        "unknown_kid": lambda: mint(key=signing_keys["rogue"]),
        "no_kid": lambda: pyjwt.encode({"sub": "x"}, signing_keys["rsa1"].private, algorithm="RS256"),
        "garbage": lambda: "not.a.jwt",
        "no_sub": lambda: mint(sub=None),
        "no_exp": lambda: mint(exp=None),
    }[case]()
    response = await gw.client.get(RECIPES, headers={"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code
    assert "WWW-Authenticate" in response.headers


async def test_confusion_is_refused_when_only_rs256_is_configured(make_gateway, jwks_server, mint, signing_keys):
    gw = await make_gateway(jwt_algorithms=["RS256"], jwt_jwks_url=jwks_server.url)
    token = _hs_signed_with_public_key(mint, signing_keys["rsa1"])
    response = await gw.client.get(RECIPES, headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()["code"]) == (401, "algorithm_not_allowed")
    # an EC key cannot stand in for an RSA one either
    ec_as_rs = pyjwt.encode(
        {"sub": "x"}, signing_keys["rsa1"].private, algorithm="RS256", headers={"kid": signing_keys["ec1"].kid}
    )
    response = await gw.client.get(RECIPES, headers={"Authorization": f"Bearer {ec_as_rs}"})
    assert (response.status_code, response.json()["code"]) == (401, "algorithm_not_allowed")


async def test_jwks_rotation_is_picked_up_without_restart(
    make_gateway, jwks_server, mint, signing_keys, workspace, auth
):
    gw = await make_gateway(jwt_algorithms=["RS256"], jwt_jwks_url=jwks_server.url, jwks_min_refresh_interval_s=0.2)
    old, new = signing_keys["rsa1"], signing_keys["rsa2"]
    assert (await gw.client.get(RECIPES, headers=auth(mint(key=old), workspace))).status_code == 200
    jwks_server.keys = [new]  # the identity provider rotates its signing key
    await asyncio.sleep(0.25)
    response = await gw.client.get(RECIPES, headers=auth(mint(key=new), workspace))
    assert response.status_code == 200, response.text
    await asyncio.sleep(0.25)
    response = await gw.client.get(RECIPES, headers=auth(mint(key=old), workspace))
    assert (response.status_code, response.json()["code"]) == (401, "unknown_key_id")


async def test_unknown_kid_refresh_is_rate_limited(gw, jwks_server, mint, signing_keys, workspace, auth):
    assert (await gw.client.get(RECIPES, headers=auth(mint(key=signing_keys["rsa1"]), workspace))).status_code == 200
    hits = jwks_server.hits
    assert hits == 1
    for _ in range(5):
        response = await gw.client.get(RECIPES, headers=auth(mint(key=signing_keys["rogue"]), workspace))
        assert (response.status_code, response.json()["code"]) == (401, "unknown_key_id")
    assert jwks_server.hits == hits  # forged kids do not hammer the identity provider


async def test_missing_and_unsupported_credentials(gw, workspace):
    response = await gw.client.get(RECIPES, headers={"X-Workspace-ID": workspace})
    assert (response.status_code, response.json()["code"]) == (401, "missing_credentials")
    response = await gw.client.get(RECIPES, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert (response.status_code, response.json()["code"]) == (401, "unsupported_auth_scheme")


async def test_workspace_must_be_one_of_the_callers(gw, mint, workspace, auth):
    token = mint(workspaces=[workspace, "ws-other"])
    response = await gw.client.get(RECIPES, headers=auth(token, "ws-someone-elses"))
    assert (response.status_code, response.json()["code"]) == (403, "workspace_forbidden")
    response = await gw.client.get(RECIPES, headers=auth(token, None))
    assert (response.status_code, response.json()["code"]) == (400, "workspace_required")
    response = await gw.client.get(RECIPES, headers=auth(token, "ws-other"))
    assert response.json()["context"]["workspace_id"] == "ws-other"


async def test_scope_claim_narrows_and_roles_widen(gw, mint, workspace, auth):
    narrowed = mint(scope="recipes:read")
    assert (await gw.client.get(RECIPES, headers=auth(narrowed, workspace))).status_code == 200
    response = await gw.client.post(f"{RECIPES}/r1/execute", headers=auth(narrowed, workspace), json={})
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
    member = mint()
    response = await gw.client.get("/api/marketplace/queue", headers=auth(member, workspace))
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
    moderator = mint(roles=["moderator"])
    response = await gw.client.get("/api/marketplace/queue", headers=auth(moderator, workspace))
    assert response.status_code == 200
    assert response.json()["context"]["roles"] == ["moderator"]

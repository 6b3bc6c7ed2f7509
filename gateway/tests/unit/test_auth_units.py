from __future__ import annotations

import time

import jwt
import pytest

from sous_gateway.auth.api_keys import derive_pepper, hash_secret, new_key, parse_key
from sous_gateway.auth.claims import ClaimMapping
from sous_gateway.auth.jwks import parse_jwks
from sous_gateway.auth.jwt import JwtVerifier
from sous_gateway.auth.principal import Principal
from sous_gateway.config import GatewaySettings
from sous_gateway.routing.proxy import child_traceparent
from sous_gateway.tokens import mint_development_token
from sous_service.errors import ApiError

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


def verifier(**overrides) -> JwtVerifier:
    values = dict(
        algorithms=["HS256"],
        secret=SECRET,
        issuer="sous-dev",
        audience="sous-api",
        leeway_s=30,
        jwks=None,
    )
    claims = {k: overrides.pop(k) for k in ("workspaces_claim", "roles_claim") if k in overrides}
    values.update(overrides)
    return JwtVerifier(**values, mapping=ClaimMapping(**claims))


async def test_development_token_round_trip():
    token = mint_development_token("alice", ["w1", "w2"], ["admin"], 60, SECRET, "sous-dev", "sous-api")
    principal = await verifier().authenticate(token)
    assert principal.user_id == "alice" and principal.workspaces == ("w1", "w2")
    assert "keys:admin" not in principal.scopes  # nothing role-given until a workspace is chosen
    acting = principal.acting_in("w1")
    assert acting.roles == ("admin",) and "keys:admin" in acting.scopes
    assert principal.auth_type == "jwt"


async def test_nested_workspace_claim_and_string_lists():
    now = int(time.time())
    claims = {
        "sub": "u",
        "iss": "sous-dev",
        "aud": "sous-api",
        "exp": now + 60,
        "org": {"ids": "w1 w2"},
        "perms": {"w2": "moderator", "elsewhere": ["admin"]},
        "scp": ["recipes:read"],
    }
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    principal = await verifier(workspaces_claim="org.ids", roles_claim="perms").authenticate(token)
    assert principal.workspaces == ("w1", "w2")
    assert principal.acting_in("w2").roles == ("moderator",) and principal.acting_in("w1").roles == ()
    assert principal.acting_in("w2").scopes == ("recipes:read",)
    # Roles for a workspace the token does not list give nothing.
    assert principal.acting_in("elsewhere").roles == ()


async def test_roles_per_workspace_stay_in_their_workspace():
    now = int(time.time())
    base = {"sub": "u", "iss": "sous-dev", "aud": "sous-api", "exp": now + 60, "workspaces": ["w1", "w2"]}
    token = jwt.encode({**base, "roles": {"w1": ["admin"], "w2": ["member"]}}, SECRET, algorithm="HS256")
    principal = await verifier().authenticate(token)
    assert "keys:admin" in principal.acting_in("w1").scopes
    assert "keys:admin" not in principal.acting_in("w2").scopes
    flat = jwt.encode({**base, "roles": ["admin"]}, SECRET, algorithm="HS256")
    with pytest.raises(ApiError) as caught:
        await verifier().authenticate(flat)
    assert (caught.value.status_code, caught.value.code) == (401, "ambiguous_roles")
    single = jwt.encode({**base, "workspaces": ["w1"], "roles": ["admin"]}, SECRET, algorithm="HS256")
    assert "keys:admin" in (await verifier().authenticate(single)).acting_in("w1").scopes


async def test_rs256_is_refused_without_a_key_set():
    token = mint_development_token("u", ["w"], secret=SECRET)
    with pytest.raises(ApiError) as caught:
        await verifier(algorithms=["RS256"]).authenticate(token)
    assert caught.value.code == "algorithm_not_allowed"


def test_workspace_selection():
    p = Principal("u", "jwt", ("w1", "w2"), (), ())
    assert p.select_workspace("w2") == "w2"
    with pytest.raises(ApiError) as caught:
        p.select_workspace("w3")
    assert (caught.value.status_code, caught.value.code) == (403, "workspace_forbidden")
    with pytest.raises(ApiError) as caught:
        p.select_workspace(None)
    assert caught.value.status_code == 400
    assert Principal("u", "api_key", ("w1",), (), ()).select_workspace(None) == "w1"


def test_api_key_format_and_hash():
    key_id, secret, key = new_key()
    assert key == f"sous_{key_id}_{secret}"
    assert parse_key(key) == (key_id, secret)
    assert parse_key(key + "x") is None and parse_key(f"other_{key_id}_{secret}") is None
    pepper = derive_pepper("", "internal")
    assert pepper != derive_pepper("", "other-internal") and derive_pepper("p", "x") == b"p"
    assert hash_secret(pepper, secret) != hash_secret(derive_pepper("", "other"), secret)
    assert len({new_key()[1] for _ in range(50)}) == 50


def test_jwks_parsing_skips_symmetric_and_encryption_keys():
    doc = {
        "keys": [
            {"kty": "oct", "kid": "s", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "e", "use": "enc", "crv": "P-256", "x": "x", "y": "y"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "nonsense",
        ]
    }
    assert parse_jwks(doc) == {}
    assert parse_jwks({"keys": "no"}) == {} and parse_jwks([]) == {}


def test_traceparent_continues_the_trace():
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    child = child_traceparent(incoming)
    assert child.startswith("00-0af7651916cd43dd8448eb211c80319c-") and child.endswith("-01") and child != incoming
    fresh = child_traceparent("garbage")
    assert len(fresh.split("-")) == 4 and fresh.split("-")[1] != "0af7651916cd43dd8448eb211c80319c"


def test_settings_rules(monkeypatch):
    monkeypatch.setenv("SOUS_JWT_ALGORITHMS", "HS256, ES256")
    monkeypatch.setenv("SOUS_JWT_JWKS_URL", "http://idp/jwks")
    monkeypatch.setenv("SOUS_CORS_ORIGINS", '["https://a", "https://b"]')
    settings = GatewaySettings()
    assert settings.jwt_algorithms == ["HS256", "ES256"] and settings.cors_origins == ["https://a", "https://b"]
    assert (settings.port, settings.database_name, settings.service_name) == (8000, "sous_gateway", "gateway")
    with pytest.raises(ValueError, match="none"):
        GatewaySettings(jwt_algorithms=["none"])
    with pytest.raises(ValueError, match="JWKS"):
        GatewaySettings(jwt_algorithms=["RS256"], jwt_jwks_url="")
    strong = "s" * 40
    with pytest.raises(ValueError, match="SOUS_JWT_SECRET"):
        GatewaySettings(env="production", internal_secret=strong)
    GatewaySettings(env="production", internal_secret=strong, jwt_secret=strong)
    GatewaySettings(env="production", internal_secret=strong, jwt_algorithms=["ES256"], jwt_jwks_url="http://idp")

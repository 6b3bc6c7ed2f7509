"""Development tokens for the `sous mint-jwt` CLI and tests (HS256 with the shared secret)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import jwt

from sous_service.config import DEVELOPMENT_JWT_SECRET


def mint_development_token(
    sub: str,
    workspaces: Sequence[str],
    roles: Sequence[str] = (),
    ttl_s: int = 3600,
    secret: str = DEVELOPMENT_JWT_SECRET,
    issuer: str = "sous-dev",
    audience: str = "sous-api",
    *,
    workspaces_claim: str = "workspaces",
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """An HS256 JWT the gateway accepts in development: sub, workspaces, roles, iat/nbf/exp, iss, aud.

    With several workspaces the roles are written per workspace (each listed workspace gets them), the
    shape the gateway requires for multi-workspace tokens."""
    now = int(time.time())
    role_claim: list[str] | dict[str, list[str]] = list(roles)
    if len(workspaces) > 1 and roles:
        role_claim = {ws: list(roles) for ws in workspaces}
    claims: dict[str, Any] = {
        "sub": sub,
        workspaces_claim: list(workspaces),
        "roles": role_claim,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    claims.update(extra_claims or {})
    return jwt.encode(claims, secret, algorithm="HS256")

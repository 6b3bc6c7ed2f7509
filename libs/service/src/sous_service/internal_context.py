"""The signed context the gateway forwards to services (DESIGN.md §7).

The gateway authenticates the caller and sends who it is and which workspace it acts in as one header,
`X-Sous-Context`, signed with HMAC-SHA256 under a secret shared only by the gateway and the services.
Services trust nothing else: a request without a valid, fresh header is refused with 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTEXT_HEADER = "X-Sous-Context"


class InvalidContext(Exception):
    """The header is missing, malformed, badly signed or stale."""


class InternalContext(BaseModel):
    model_config = ConfigDict(frozen=True)

    workspace_id: str
    user_id: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    auth_type: Literal["jwt", "api_key", "internal", "system"] = "jwt"
    request_id: str = ""
    issued_at: float = Field(default_factory=time.time)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "*" in self.scopes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_context(context: InternalContext, secret: str) -> str:
    body = _b64(json.dumps(context.model_dump(mode="json"), separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_context(header: str | None, secret: str, max_age_s: float = 300.0) -> InternalContext:
    if not header or "." not in header:
        raise InvalidContext("missing internal context")
    body, _, signature = header.rpartition(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
    except ValueError as exc:
        raise InvalidContext("malformed signature") from exc
    if not hmac.compare_digest(expected, given):
        raise InvalidContext("bad signature")
    try:
        context = InternalContext.model_validate_json(_unb64(body))
    except (ValueError, ValidationError) as exc:
        raise InvalidContext("malformed context") from exc
    if abs(time.time() - context.issued_at) > max_age_s:
        raise InvalidContext("stale context")
    return context

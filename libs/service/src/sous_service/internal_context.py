"""The signed context the gateway forwards to services (docs/security.md).

The gateway authenticates the caller and sends who it is, which workspace it acts in and which scopes it
holds as one header, `X-Sous-Context`, signed with HMAC-SHA256 under a secret shared only by the gateway
and the services. Services trust nothing else: a request without a valid, fresh header is refused with 401.

A header is bound to one request: it covers the method, the path with its query, a SHA-256 digest of the
request body and the service it is meant for, and carries a nonce the verifying service remembers for as
long as the header is fresh. A header captured on one request therefore cannot be replayed, nor reused for
another path, body or service.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTEXT_HEADER = "X-Sous-Context"
DEFAULT_MAX_AGE_S = 30.0


class InvalidContext(Exception):
    """The header is missing, malformed, badly signed, stale, replayed or meant for another request."""


class RequestBinding(BaseModel):
    """What the signature ties the identity to."""

    model_config = ConfigDict(frozen=True)

    method: str
    target: str  # raw path and query, exactly as sent
    body_sha256: str
    service: str


class InternalContext(BaseModel):
    model_config = ConfigDict(frozen=True)

    workspace_id: str
    user_id: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    auth_type: Literal["jwt", "api_key", "internal", "system"] = "jwt"
    request_id: str = ""
    issued_at: float = Field(default_factory=time.time)
    nonce: str = ""
    binding: RequestBinding | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "*" in self.scopes


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_target(raw_path: bytes | str, query: bytes | str = b"") -> str:
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    return f"{path}?{text}" if text else path


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(context: InternalContext, secret: str) -> str:
    body = _b64(json.dumps(context.model_dump(mode="json"), separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def sign_request(context: InternalContext, secret: str, *, method: str, target: str, body: bytes, service: str) -> str:
    """The header for one request: identity, binding, a fresh issue time and a fresh nonce."""
    bound = context.model_copy(
        update={
            "issued_at": time.time(),
            "nonce": secrets.token_urlsafe(16),
            "binding": RequestBinding(
                method=method.upper(), target=target, body_sha256=body_digest(body), service=service
            ),
        }
    )
    return _encode(bound, secret)


def sign_context(context: InternalContext, secret: str) -> str:
    """An unbound header: services refuse it on its own. Test harnesses build one per caller and let
    `rebind_hook` bind it to each request they send."""
    return _encode(context, secret)


def decode_context(header: str | None, secret: str) -> InternalContext:
    """Check the signature and parse; says nothing about freshness or binding."""
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
        return InternalContext.model_validate_json(_unb64(body))
    except (ValueError, ValidationError) as exc:
        raise InvalidContext("malformed context") from exc


class ReplayCache:
    """Nonces seen within the freshness window. A nonce older than the window needs no memory: the age
    check refuses its header anyway. Bounded: when full, new headers are refused rather than old nonces
    forgotten early (forgetting would reopen replay)."""

    def __init__(self, window_s: float, max_entries: int = 200_000) -> None:
        self._window_s = window_s
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def remember(self, nonce: str, now: float) -> None:
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[oldest]
        if nonce in self._seen:
            raise InvalidContext("replayed context")
        if len(self._seen) >= self._max:
            raise InvalidContext("too many requests in the replay window")
        # Window on both sides of issue time (clock skew), so twice the window from now is always enough.
        self._seen[nonce] = now + 2 * self._window_s


def verify_context(
    header: str | None,
    secret: str,
    *,
    expected: RequestBinding,
    replay: ReplayCache,
    max_age_s: float = DEFAULT_MAX_AGE_S,
) -> InternalContext:
    context = decode_context(header, secret)
    now = time.time()
    if abs(now - context.issued_at) > max_age_s:
        raise InvalidContext("stale context")
    if context.binding is None or not context.nonce:
        raise InvalidContext("context not bound to a request")
    if context.binding.service != expected.service:
        raise InvalidContext("context meant for another service")
    if context.binding.method != expected.method.upper() or context.binding.target != expected.target:
        raise InvalidContext("context signed for another method or path")
    if not hmac.compare_digest(context.binding.body_sha256, expected.body_sha256):
        raise InvalidContext("context signed for another body")
    replay.remember(context.nonce, now)
    return context

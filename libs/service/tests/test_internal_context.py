"""The signed context is bound to one request, fresh for 30 s, single-use; routes re-check scopes."""

from __future__ import annotations

import time

import httpx
import pytest

from sous_service.internal_client import ContextAuth
from sous_service.internal_context import (
    CONTEXT_HEADER,
    InternalContext,
    InvalidContext,
    ReplayCache,
    RequestBinding,
    body_digest,
    sign_context,
    sign_request,
    verify_context,
)
from sous_service.web import Context, create_service_app, require_scope

pytestmark = pytest.mark.unit

SECRET = "unit-secret"
IDENTITY = InternalContext(workspace_id="w", user_id="u", scopes=("recipes:read",))


def _binding(method: str = "POST", target: str = "/api/x?a=1", body: bytes = b"{}", service: str = "catalog"):
    return RequestBinding(method=method, target=target, body_sha256=body_digest(body), service=service)


def _signed(**kw: object) -> str:
    values: dict[str, object] = {"method": "POST", "target": "/api/x?a=1", "body": b"{}", "service": "catalog"}
    values.update(kw)
    return sign_request(IDENTITY, SECRET, **values)  # type: ignore[arg-type]


def test_a_bound_header_verifies_once():
    cache = ReplayCache(30)
    header = _signed()
    assert verify_context(header, SECRET, expected=_binding(), replay=cache).user_id == "u"
    with pytest.raises(InvalidContext, match="replayed"):
        verify_context(header, SECRET, expected=_binding(), replay=cache)


@pytest.mark.parametrize(
    ("expected", "reason"),
    [
        (_binding(method="DELETE"), "another method or path"),
        (_binding(target="/api/x?a=2"), "another method or path"),
        (_binding(target="/api/y?a=1"), "another method or path"),
        (_binding(body=b'{"evil": 1}'), "another body"),
        (_binding(service="executor"), "another service"),
    ],
)
def test_a_header_is_refused_for_any_other_request(expected: RequestBinding, reason: str):
    with pytest.raises(InvalidContext, match=reason):
        verify_context(_signed(), SECRET, expected=expected, replay=ReplayCache(30))


def test_stale_unbound_and_forged_headers_are_refused():
    old = sign_context(IDENTITY.model_copy(update={"issued_at": time.time() - 31}), SECRET)
    with pytest.raises(InvalidContext, match="stale"):
        verify_context(old, SECRET, expected=_binding(), replay=ReplayCache(30))
    with pytest.raises(InvalidContext, match="not bound"):
        fresh = IDENTITY.model_copy(update={"issued_at": time.time()})
        verify_context(sign_context(fresh, SECRET), SECRET, expected=_binding(), replay=ReplayCache(30))
    with pytest.raises(InvalidContext, match="bad signature"):
        verify_context(_signed(), "other-secret", expected=_binding(), replay=ReplayCache(30))


def test_the_replay_cache_forgets_only_what_has_gone_stale():
    cache = ReplayCache(30, max_entries=2)
    cache.remember("a", now=100.0)
    cache.remember("b", now=100.0)
    with pytest.raises(InvalidContext, match="too many"):
        cache.remember("c", now=101.0)
    cache.remember("c", now=161.0)  # a and b are past twice the window: their headers are stale anyway


def _app():
    app = create_service_app(title="t", description="d", internal_secret=SECRET, service_name="catalog")

    @app.post("/api/things", dependencies=[require_scope("recipes:write")])
    async def write(ctx: Context) -> dict[str, str]:
        return {"by": ctx.user_id}

    @app.get("/api/things")
    async def read(ctx: Context) -> dict[str, str]:
        return {"by": ctx.user_id}

    return app


async def test_services_check_the_binding_and_the_scope_themselves():
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        reader = ContextAuth(IDENTITY, SECRET, "catalog")
        assert (await client.get("/api/things", params={"q": "1"}, auth=reader)).status_code == 200
        refused = await client.post("/api/things", json={}, auth=reader)
        assert (refused.status_code, refused.json()["code"]) == (403, "missing_scope")
        writer = ContextAuth(IDENTITY.model_copy(update={"scopes": ("recipes:write",)}), SECRET, "catalog")
        assert (await client.post("/api/things", json={"a": 1}, auth=writer)).status_code == 200
        # A header signed for the executor is worth nothing at the catalog.
        wrong = await client.get("/api/things", auth=ContextAuth(IDENTITY, SECRET, "executor"))
        assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_internal_context")
        # A header captured from one request cannot be replayed, even verbatim.
        captured = sign_request(IDENTITY, SECRET, method="GET", target="/api/things", body=b"", service="catalog")
        first = await client.get("/api/things", headers={CONTEXT_HEADER: captured})
        again = await client.get("/api/things", headers={CONTEXT_HEADER: captured})
        assert (first.status_code, again.status_code) == (200, 401)

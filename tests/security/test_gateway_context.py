"""Finding 9: a signed context header covered identity only and was good for ±300 s anywhere."""

from __future__ import annotations

import time

import httpx
import pytest

from sous_local.stack import Stack
from sous_service.internal_context import (
    CONTEXT_HEADER,
    InternalContext,
    decode_context,
    sign_context,
    sign_request,
)

from .conftest import new_workspace

pytestmark = pytest.mark.e2e

LIST = "/api/workflow-recipes?limit=5"


def _captured(stack: Stack, workspace: str, **binding: object) -> str:
    """A header as it crossed the internal network on one request, seen by someone on that network."""
    values: dict[str, object] = {"method": "GET", "target": LIST, "body": b"", "service": "catalog"}
    values.update(binding)
    context = InternalContext(workspace_id=workspace, user_id="victim", scopes=("recipes:read", "recipes:write"))
    return sign_request(context, stack.internal_secret, **values)  # type: ignore[arg-type]


async def _send(stack: Stack, service: str, method: str, target: str, header: str, body: bytes = b"") -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.urls[service], timeout=30) as client:
        return await client.request(
            method, target, content=body, headers={CONTEXT_HEADER: header, "Content-Type": "application/json"}
        )


async def test_a_captured_header_cannot_be_replayed(stack: Stack):
    header = _captured(stack, new_workspace())
    assert (await _send(stack, "catalog", "GET", LIST, header)).status_code == 200
    replayed = await _send(stack, "catalog", "GET", LIST, header)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "invalid_internal_context")
    assert "replayed" in replayed.json()["detail"]


@pytest.mark.parametrize(
    ("service", "method", "target", "body"),
    [
        ("catalog", "POST", "/api/agents", b'{"name": "planted"}'),  # another method, path and body
        ("catalog", "GET", "/api/workflow-recipes?limit=100", b""),  # another query
        ("executor", "GET", "/api/tools", b""),  # another service
    ],
)
async def test_a_captured_header_is_worthless_for_any_other_request(
    stack: Stack, service: str, method: str, target: str, body: bytes
):
    # Captured on a catalog request; for the other service, on the very same method, path and body.
    captured = _captured(stack, new_workspace(), **({"target": target} if service != "catalog" else {}))
    response = await _send(stack, service, method, target, captured, body)
    assert (response.status_code, response.json()["code"]) == (401, "invalid_internal_context")


async def test_a_header_for_the_right_request_but_the_wrong_body_is_refused(stack: Stack):
    header = _captured(stack, new_workspace(), method="POST", target="/api/agents", body=b'{"name": "a"}')
    response = await _send(stack, "catalog", "POST", "/api/agents", header, b'{"name": "b"}')
    assert response.status_code == 401 and "body" in response.json()["detail"]


async def test_identity_only_and_stale_headers_are_refused(stack: Stack):
    identity = InternalContext(workspace_id=new_workspace(), user_id="victim", scopes=("recipes:read",))
    unbound = await _send(stack, "catalog", "GET", LIST, sign_context(identity, stack.internal_secret))
    assert unbound.status_code == 401
    bound = sign_request(identity, stack.internal_secret, method="GET", target=LIST, body=b"", service="catalog")
    # Bound to this very request and never used, but signed a minute ago.
    aged = decode_context(bound, stack.internal_secret).model_copy(update={"issued_at": time.time() - 60})
    stale = await _send(stack, "catalog", "GET", LIST, sign_context(aged, stack.internal_secret))
    assert stale.status_code == 401 and "stale" in stale.json()["detail"]

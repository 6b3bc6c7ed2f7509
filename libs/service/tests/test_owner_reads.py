"""Reads from an owner service: signed for that service, one scope, the caller's workspace."""

from __future__ import annotations

import httpx
import pytest

from sous_service.internal_context import CONTEXT_HEADER, decode_context
from sous_service.owner_reads import OwnerReads

pytestmark = pytest.mark.unit

SECRET = "test-secret"


async def test_a_read_is_signed_for_the_owner_with_only_the_scope_it_needs() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"template_id": "t1"})

    owner = OwnerReads("http://catalog", SECRET, "catalog", reader="marketplace", transport=httpx.MockTransport(answer))
    got = await owner.get("ws-1", "recipes:read", "/api/workflow-recipes/t1")
    assert got is not None and (got.status, got.body) == (200, {"template_id": "t1"})
    context = decode_context(seen[0].headers[CONTEXT_HEADER], SECRET)
    assert (context.workspace_id, context.scopes, context.user_id) == ("ws-1", ("recipes:read",), "marketplace")
    assert context.binding is not None and context.binding.service == "catalog"
    assert context.binding.target == "/api/workflow-recipes/t1"


async def test_no_owner_configured_or_unreachable_is_no_answer() -> None:
    assert await OwnerReads("", SECRET, "catalog", reader="m").get("ws", "recipes:read", "/x") is None

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    owner = OwnerReads("http://catalog", SECRET, "catalog", reader="m", transport=httpx.MockTransport(down))
    assert await owner.get("ws", "recipes:read", "/x") is None

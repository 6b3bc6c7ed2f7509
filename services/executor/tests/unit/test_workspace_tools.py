"""Composio per workspace (the workspace is the Composio user; toolkits granted per workspace), webhook signing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sous_executor.tools.builtin import builtin_tools
from sous_executor.tools.composio import composio_tools
from sous_executor.tools.router import ToolRouter
from sous_executor.webhooks.signing import InvalidSignature, sign, verify

pytestmark = pytest.mark.unit


class FakeComposioTools:
    def __init__(self) -> None:
        self.executed: list[tuple[str, str]] = []

    def get(self, user_id: str, toolkits: list[str]) -> list[dict[str, Any]]:
        slug = f"{toolkits[0].upper()}_DO"
        return [{"type": "function", "function": {"name": slug, "description": "d", "parameters": {"type": "object"}}}]

    def execute(self, slug: str, arguments: dict[str, Any], user_id: str, **_options: Any) -> dict[str, Any]:
        self.executed.append((slug, user_id))
        return {"successful": True, "data": {"ran_for": user_id}}


class FakeComposio:
    def __init__(self) -> None:
        self.tools = FakeComposioTools()


async def test_composio_tools_run_as_the_calling_workspace_and_only_where_granted() -> None:
    client = FakeComposio()
    grants = {"w1": ["github"], "w2": ["slack", "GitHub"]}
    tools = composio_tools("key", grants, client_factory=lambda _key: client)
    assert sorted(t.name for t in tools) == ["GITHUB_DO", "SLACK_DO"]
    router = ToolRouter([*builtin_tools(), *tools], toolkit_grants=grants)
    skills = ["GITHUB_DO", "SLACK_DO", "calculator"]
    offered = [t["function"]["name"] for t in router.openai_tools(skills, workspace_id="w1")]
    assert offered == ["GITHUB_DO", "calculator"]
    assert "SLACK_DO" not in {t["name"] for t in router.list_tools("w1")}
    assert {"SLACK_DO", "GITHUB_DO"} <= {t["name"] for t in router.list_tools("w2")}
    assert router.openai_tools(skills, workspace_id="w3") == router.openai_tools(["calculator"])

    ran = await router.call(skills, "GITHUB_DO", "{}", workspace_id="w1")
    assert ran["result"] == {"ran_for": "w1"} and client.tools.executed == [("GITHUB_DO", "w1")]
    hidden = await router.call(skills, "SLACK_DO", "{}", workspace_id="w1")
    assert hidden["error"] == "unknown tool 'SLACK_DO'" and len(client.tools.executed) == 1
    assert (await router.call(skills, "GITHUB_DO", "{}"))["error"] == "unknown tool 'GITHUB_DO'"


def test_composio_is_off_without_a_key_grants_or_the_sdk() -> None:
    assert composio_tools("", {"w1": ["github"]}, client_factory=lambda _k: FakeComposio()) == []
    assert composio_tools("key", {}, client_factory=lambda _k: FakeComposio()) == []

    def missing(_key: str) -> Any:
        raise ImportError("composio")

    assert composio_tools("key", {"w1": ["github"]}, client_factory=missing) == []


@pytest.mark.parametrize("secret", ["raw secret value", "whsec_c2VjcmV0LWtleS1mb3ItdGhlLXdlYmhvb2stdGVzdA=="])
def test_standard_webhooks_signatures(secret: str) -> None:
    body = b'{"who": "partner"}'
    headers = sign(secret, "msg_1", body)
    assert verify(secret, body, headers) == "msg_1"
    for bad_body, bad_headers in [
        (b'{"who": "mallory"}', headers),
        (body, {**headers, "webhook-signature": "v1,AAAA"}),
        (body, {**headers, "webhook-signature": "garbage"}),
        (body, {k: v for k, v in headers.items() if k != "webhook-timestamp"}),
        (body, sign(secret, "msg_2", body, at=datetime.now(UTC) - timedelta(minutes=6))),
        (body, sign(secret, "msg_3", body, at=datetime.now(UTC) + timedelta(minutes=6))),
        (body, sign("another secret", "msg_4", body)),
    ]:
        with pytest.raises(InvalidSignature):
            verify(secret, bad_body, bad_headers)

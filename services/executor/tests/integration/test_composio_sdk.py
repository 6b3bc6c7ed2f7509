"""The Composio adapter through the real `composio` SDK, against a local stub of Composio's HTTP API.

The executor's tool router is built as bootstrap builds it (settings: API key and toolkits per workspace);
only COMPOSIO_BASE_URL points the SDK at the stub. Nothing may leave the machine: host lookups other than
loopback are refused and recorded, and the SDK's telemetry hook records anything it would send.
"""

from __future__ import annotations

import contextvars
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from composio_stub import API_KEY, ComposioStub

from sous_executor.bootstrap import build_tool_router
from sous_executor.config import ExecutorSettings
from sous_executor.tools.composio import composio_tools

pytestmark = pytest.mark.integration

WORKSPACE_A = "ws_composio_a"
WORKSPACE_B = "ws_composio_b"
STAR = "GITHUB_STAR_A_REPOSITORY"
SEND = "SLACK_SEND_MESSAGE"
SKILLS = [STAR, SEND, "calculator"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
STUB_PATHS = {"/api/v3.1/tools", f"/api/v3.1/tools/execute/{STAR}", f"/api/v3.1/tools/execute/{SEND}"}


@dataclass
class Offline:
    lookups: list[str] = field(default_factory=list)
    telemetry: list[Any] = field(default_factory=list)


@pytest.fixture(scope="module")
def stub() -> Iterator[ComposioStub]:
    server = ComposioStub()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def offline(stub: ComposioStub, monkeypatch: pytest.MonkeyPatch) -> Offline:
    """The SDK pointed at the stub; any other host lookup refused, any telemetry event recorded, not sent."""
    import composio.core.models.base as sdk_base

    seen = Offline()
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            seen.lookups.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"offline test: {name} is not reachable")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    monkeypatch.setattr(sdk_base, "push_event", lambda event: seen.telemetry.append(event))
    for name in [n for n in os.environ if n.startswith("COMPOSIO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COMPOSIO_BASE_URL", stub.url)
    stub.requests.clear()
    return seen


def settings(api_key: str = API_KEY) -> ExecutorSettings:
    grants = {WORKSPACE_A: ["GitHub"], WORKSPACE_B: ["slack"]}
    return ExecutorSettings(env="test", composio_api_key=api_key, composio_workspace_toolkits=json.dumps(grants))


async def test_workspace_tools_run_through_the_sdk_as_the_workspace(stub: ComposioStub, offline: Offline) -> None:
    # Built in a context of its own, as bootstrap builds the router before the tasks that call tools exist.
    router = contextvars.Context().run(build_tool_router, settings())

    # (1) Each granted toolkit's schemas were listed once, with the project key; A sees its toolkit only.
    listed = sorted(r.query["toolkit_slug"] for r in stub.requests if r.path == "/api/v3.1/tools")
    assert listed == ["github", "slack"]
    offered = {t["function"]["name"]: t["function"] for t in router.openai_tools(SKILLS, workspace_id=WORKSPACE_A)}
    assert set(offered) == {STAR, "calculator"}
    assert offered[STAR]["parameters"]["required"] == ["owner", "repo"]
    assert offered[STAR]["description"] == "Star a repository for the connected user."
    listed_for_a = {t["name"]: t for t in router.list_tools(WORKSPACE_A)}
    assert listed_for_a[STAR]["provider"] == "composio" and SEND not in listed_for_a

    # (2) A's call reaches Composio as user A with the arguments; the result comes back through the adapter.
    arguments = {"owner": "sous-dev", "repo": "sous"}
    record = await router.call(SKILLS, STAR, json.dumps(arguments), workspace_id=WORKSPACE_A)
    assert record["error"] is None
    assert record["result"] == {"tool": STAR, "ran_for": WORKSPACE_A, "arguments": arguments}
    [executed] = stub.executions()
    assert executed.path == f"/api/v3.1/tools/execute/{STAR}"
    assert executed.body["user_id"] == WORKSPACE_A and executed.body["arguments"] == arguments
    assert executed.body["version"] == "latest"

    # A tool Composio reports as failed is an error the model sees, not a result.
    failed = await router.call(SKILLS, STAR, {"owner": "sous-dev", "repo": "missing"}, workspace_id=WORKSPACE_A)
    assert failed["error"] == "Repository not found" and failed["result"] is None
    assert len(stub.executions()) == 2

    # (3) B was not granted GitHub: the tool does not exist for it and nothing reaches Composio.
    assert STAR not in {t["name"] for t in router.list_tools(WORKSPACE_B)}
    assert STAR not in {t["function"]["name"] for t in router.openai_tools(SKILLS, workspace_id=WORKSPACE_B)}
    refused = await router.call(SKILLS, STAR, json.dumps(arguments), workspace_id=WORKSPACE_B)
    assert refused["error"] == f"unknown tool {STAR!r}" and refused["result"] is None
    no_workspace = await router.call(SKILLS, STAR, json.dumps(arguments))
    assert no_workspace["error"] == f"unknown tool {STAR!r}"
    # B's own toolkit runs as B.
    sent = await router.call(SKILLS, SEND, {"channel": "#ops", "text": "hi"}, workspace_id=WORKSPACE_B)
    assert sent["result"]["ran_for"] == WORKSPACE_B
    assert [e.body["user_id"] for e in stub.executions()] == [WORKSPACE_A, WORKSPACE_A, WORKSPACE_B]

    # Only the stub was spoken to, always with the key; no telemetry, no other host.
    assert {r.path for r in stub.requests} <= STUB_PATHS
    assert all(r.headers.get("x-api-key") == API_KEY for r in stub.requests)
    assert offline.lookups == []
    assert offline.telemetry == []


async def test_a_key_composio_refuses_offers_no_tools(stub: ComposioStub, offline: Offline) -> None:
    tools = composio_tools("not-the-key", settings().composio_toolkit_map)
    assert tools == []
    assert {r.path for r in stub.requests} == {"/api/v3.1/tools"}
    assert offline.lookups == []
    assert offline.telemetry == []

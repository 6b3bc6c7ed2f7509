"""Finding 3: live-event streams could take every upstream connection of the gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from .conftest import Api, eventually, recipe_with_agent, start_execution

pytestmark = pytest.mark.e2e

# A step the offline model answers only after a minute: the execution, and its stream, stay open.
SLOW = "Take your time [[latency:60000]]"


class OpenStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next_data_line(self) -> str:
        async for line in self.lines:
            if line and not line.startswith(":"):
                return line
        raise AssertionError("the stream ended")


@contextlib.asynccontextmanager
async def stream(api: Api, path: str) -> AsyncIterator[httpx.Response]:
    async with api.client.stream("GET", path, headers=api.headers) as response:
        yield response


async def _events_path(api: Api) -> tuple[str, str, str]:
    template_id = await recipe_with_agent(api, SLOW)
    execution_id = await start_execution(api, template_id)
    return f"/api/workflow-recipes/{template_id}/executions/{execution_id}/events", template_id, execution_id


async def _cancel(api: Api, template_id: str, execution_id: str) -> None:
    await api.request("POST", f"/api/workflow-recipes/{template_id}/executions/{execution_id}/cancel", json={})


async def test_streams_are_capped_per_caller_and_per_workspace(make_api):
    alice = make_api()
    bob = make_api(workspace=alice.workspace, user="bob")
    path, template_id, execution_id = await _events_path(alice)
    async with contextlib.AsyncExitStack() as open_streams:
        # Kept referenced: a line iterator that is garbage-collected closes its connection, and so its stream.
        readers: list[OpenStream] = []
        for _ in range(2):  # SOUS_STREAM_MAX_PER_CALLER
            response = await open_streams.enter_async_context(stream(alice, path))
            assert response.status_code == 200
            readers.append(OpenStream(response))
            assert (await readers[-1].next_data_line()).startswith("retry:")
        refused = await alice.request("GET", path)
        assert (refused.status_code, refused.json()["code"]) == (429, "too_many_streams")
        assert int(refused.headers["Retry-After"]) >= 1
        # Bob has streams left of his own, but the workspace (3) has only one more.
        third = await open_streams.enter_async_context(stream(bob, path))
        assert third.status_code == 200
        readers.append(OpenStream(third))
        assert (await readers[-1].next_data_line()).startswith("retry:")
        refused = await bob.request("GET", path)
        assert (refused.status_code, refused.json()["code"]) == (429, "too_many_streams")
        # Another tenant is not affected by this one's streams.
        other = make_api()
        other_path, other_template, other_execution = await _events_path(other)
        async with stream(other, other_path) as response:
            assert response.status_code == 200
        await _cancel(other, other_template, other_execution)
    await _cancel(alice, template_id, execution_id)


async def test_a_closed_stream_frees_its_slot(make_api):
    alice = make_api()
    path, template_id, execution_id = await _events_path(alice)

    async def open_read_close() -> bool:
        async with stream(alice, path) as response:
            if response.status_code != 200:
                return False
            await OpenStream(response).next_data_line()
            return True

    # More streams than the per-caller cap, one after the other: each one's slot comes back when its
    # client leaves (the gateway hears of the departure asynchronously, hence the wait).
    for _ in range(5):
        await eventually(open_read_close, timeout_s=30, what="a stream slot to come back")
    await _cancel(alice, template_id, execution_id)


async def test_another_workspace_cannot_open_the_stream(make_api):
    owner, intruder = make_api(), make_api()
    path, template_id, execution_id = await _events_path(owner)
    response = await intruder.request("GET", path)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    await _cancel(owner, template_id, execution_id)

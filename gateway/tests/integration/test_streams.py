"""Streams: their own pool, caps per caller, a maximum lifetime and an idle read timeout."""

from __future__ import annotations

import asyncio

import httpx
import pytest

pytestmark = pytest.mark.integration

EVENTS = "/api/workflow-recipes/r-1/executions/e-1/events"


async def _read_all(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    async with client.stream("GET", EVENTS, headers=headers) as response:
        assert response.status_code == 200
        return "".join([chunk async for chunk in response.aiter_text()])


@pytest.mark.parametrize(
    "limits", [{"stream_idle_timeout_s": 0.5}, {"stream_max_lifetime_s": 0.5, "stream_idle_timeout_s": 60}]
)
async def test_a_stream_ends_when_silent_or_too_old(make_gateway, mint, workspace, auth, limits):
    # The echo upstream sends one event, then holds the stream open for 10 s before a second one.
    gw = await make_gateway(**limits)
    body = await asyncio.wait_for(_read_all(gw.client, auth(mint(), workspace)), 30)
    assert '"n": 1' in body and '"n": 2' not in body
    assert gw.components.streams.count() == 0


async def test_streams_cannot_starve_ordinary_requests(make_gateway, mint, workspace, auth, upstreams):
    gw = await make_gateway(upstream_max_connections=2, stream_max_per_caller=20, stream_max_per_workspace=20)
    headers = auth(mint(), workspace)
    held = [gw.client.stream("GET", EVENTS, headers=headers) for _ in range(6)]
    opened = [await context.__aenter__() for context in held]
    try:
        assert all(response.status_code == 200 for response in opened)
        # More streams are open than the ordinary pool has connections; ordinary requests still pass.
        for _ in range(5):
            response = await asyncio.wait_for(gw.client.get("/api/workflow-recipes", headers=headers), 30)
            assert response.status_code == 200
        assert gw.components.streams.count(caller="user-1") == 6
    finally:
        for echo in upstreams.values():
            echo.release.set()
        for context in held:
            await context.__aexit__(None, None, None)


async def test_the_per_caller_cap_answers_429_and_frees_on_close(make_gateway, mint, workspace, auth, upstreams):
    gw = await make_gateway(stream_max_per_caller=1)
    headers = auth(mint(), workspace)
    async with gw.client.stream("GET", EVENTS, headers=headers) as first:
        assert first.status_code == 200
        refused = await gw.client.get(EVENTS, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (429, "too_many_streams")
        assert refused.headers["Retry-After"] == str(gw.settings.stream_retry_after_s)
        upstreams["executor"].release.set()
        await first.aread()
    deadline = asyncio.get_running_loop().time() + 30
    while gw.components.streams.count() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert (await gw.client.get(EVENTS, headers=headers)).status_code == 200


async def test_an_execute_that_asks_for_its_events_is_a_stream_and_a_plain_one_is_not(
    make_gateway, mint, workspace, auth, upstreams
):
    gw = await make_gateway(stream_max_per_caller=1)
    headers = auth(mint(), workspace)
    execute = "/api/workflow-recipes/r-1/execute"
    streaming = {**headers, "Accept": "text/event-stream"}
    async with gw.client.stream("POST", execute, json={"input_data": {}}, headers=streaming) as started:
        assert started.status_code == 200
        assert gw.components.streams.count(caller="user-1") == 1
        refused = await gw.client.get(EVENTS, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (429, "too_many_streams")
        plain = await gw.client.post(execute, json={"input_data": {}}, headers=headers)
        assert plain.status_code == 200 and plain.json()["method"] == "POST"
        upstreams["executor"].release.set()
        await started.aread()

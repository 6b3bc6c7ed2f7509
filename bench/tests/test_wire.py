"""The benchmark's HTTP/1.1 client and its SSE reading, against a local asyncio server."""

from __future__ import annotations

import asyncio

import pytest
from peer.sous_side import whole_events
from peer.wire import WireClient, WireError

pytestmark = pytest.mark.unit


def test_whole_events_leaves_out_an_event_cut_in_the_middle() -> None:
    body = b'id: 1\ndata: {"n": 1}\n\n: keep-alive\n\nid: 2\r\ndata: {"n": 2}\r\n\r\nid: 3\ndata: {"n"'
    events, last_id = whole_events(body)
    assert events == [{"n": 1}, {"n": 2}]
    assert last_id == "2"


async def _serve(handler: object) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def test_a_chunked_and_a_sized_response_share_one_connection_and_requests_are_signed() -> None:
    seen: list[bytes] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for answer in (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\nX-Execution-ID: e-1\r\n\r\n{}",
        ):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            seen.append(head + await reader.readexactly(length))
            writer.write(answer)
            await writer.drain()
        writer.close()

    server, url = await _serve(handler)
    client = WireClient(
        url, sign=lambda method, target, body: {"X-Signed": f"{method} {target} {len(body)}"}, max_connections=2
    )
    try:
        first = await client.request("GET", "/stream")
        second = await client.request("POST", "/start", b'{"a": 1}')
    finally:
        await client.close()
        server.close()
    assert (first.status, first.body) == (200, b"hello world")
    assert (second.status, second.body) == (202, b"{}")
    assert second.headers["x-execution-id"] == "e-1"  # names in lower case
    assert connections == 1
    assert b"X-Signed: GET /stream 0" in seen[0]
    assert b"X-Signed: POST /start 8" in seen[1] and seen[1].endswith(b'{"a": 1}')


async def test_a_connection_closed_mid_body_raises_with_what_was_received() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nid: 1\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await _serve(handler)
    client = WireClient(url, sign=lambda *_: {}, max_connections=1)
    try:
        with pytest.raises(WireError) as raised:
            await client.request("GET", "/stream")
    finally:
        server.close()
    assert raised.value.args[1] == b"id: 1\n"
    assert raised.value.args[2]["transfer-encoding"] == "chunked"  # the headers read before the cut

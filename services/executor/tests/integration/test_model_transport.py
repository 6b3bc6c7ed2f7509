"""The model client's aiohttp transport against a real HTTP server on loopback: answers, encodings, redirects
checked by the egress policy, and every failure as the openai client's error a step classifies."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx2
import openai
import pytest
from openai import AsyncOpenAI

from sous_executor.egress import EgressDenied, EgressPolicy, Origin
from sous_executor.llm.client import _EgressTransport
from sous_executor.llm.completion import create_completion
from sous_executor.llm.errors import model_failure

pytestmark = pytest.mark.integration

ANSWER = json.dumps(
    {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "done"}}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1},
    }
).encode()
BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}

Reply = Callable[[asyncio.StreamWriter, bytes], Awaitable[None]]


@dataclass
class LoopbackServer:
    """An HTTP/1.1 server on loopback whose answer to each request is `reply`; requests and connections seen."""

    reply: Reply
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.reply(writer, request)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Reply], Awaitable[LoopbackServer]]]:
    servers: list[asyncio.Server] = []

    async def start(reply: Reply) -> LoopbackServer:
        loopback = LoopbackServer(reply)
        server = await asyncio.start_server(loopback._serve, "127.0.0.1", 0)
        loopback.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return loopback

    yield start
    for server in servers:
        server.close()


def response(status: int, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answering(status: int, body: bytes, *headers: str) -> Reply:
    async def reply(writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(response(status, body, "Content-Type: application/json", *headers))

    return reply


def client_for(
    url: str, trusted: list[str], timeout: float | httpx2.Timeout = 5.0, connections: int = 4
) -> AsyncOpenAI:
    policy = EgressPolicy([], block_private=True, trusted=[Origin.parse(origin) for origin in trusted])
    transport = _EgressTransport(policy, connections)
    return AsyncOpenAI(
        base_url=f"{url}/v1",
        api_key="key-1",
        max_retries=0,
        timeout=timeout,
        http_client=httpx2.AsyncClient(transport=transport, timeout=timeout, follow_redirects=True),
    )


async def test_an_answer_is_read_and_its_connection_kept_for_the_next_call(serve) -> None:  # type: ignore[no-untyped-def]
    server = await serve(answering(200, ANSWER))
    client = client_for(server.url, [server.url])
    try:
        for _ in range(3):
            completion = await create_completion(client, BODY)
            assert completion.content == "done"
    finally:
        await client.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nauthorization: bearer key-1\r\n" in first.lower()
    assert json.loads(first.split(b"\r\n\r\n", 1)[1]) == BODY


async def test_a_gzip_encoded_answer_is_decoded(serve) -> None:  # type: ignore[no-untyped-def]
    server = await serve(answering(200, gzip.compress(ANSWER), "Content-Encoding: gzip"))
    client = client_for(server.url, [server.url])
    try:
        assert (await create_completion(client, BODY)).content == "done"
    finally:
        await client.close()


async def test_a_status_error_keeps_the_providers_status(serve) -> None:  # type: ignore[no-untyped-def]
    server = await serve(answering(429, b'{"error": {"code": "rate_limit_exceeded"}}'))
    client = client_for(server.url, [server.url])
    try:
        with pytest.raises(openai.RateLimitError) as raised:
            await create_completion(client, BODY)
    finally:
        await client.close()
    failure = model_failure(raised.value)
    assert failure is not None and failure.error_type == "rate_limited" and "rate_limit_exceeded" in failure.message


async def test_a_redirect_is_followed_only_to_an_allowed_origin(serve) -> None:  # type: ignore[no-untyped-def]
    target = await serve(answering(200, ANSWER))

    async def moved(writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(response(307, b"", f"Location: {target.url}/v1/chat/completions"))

    origin = await serve(moved)
    allowed = client_for(origin.url, [origin.url, target.url])
    refused = client_for(origin.url, [origin.url])
    try:
        assert (await create_completion(allowed, BODY)).content == "done"
        assert len(target.requests) == 1
        with pytest.raises(EgressDenied):
            await create_completion(refused, BODY)
    finally:
        await allowed.close()
        await refused.close()
    assert len(target.requests) == 1


async def failed_call(url: str, read_timeout_s: float = 5.0) -> openai.APIConnectionError:
    """The openai error a completion against `url` (an allowed origin) fails with."""
    client = client_for(url, [url], timeout=read_timeout_s)
    try:
        with pytest.raises(openai.APIConnectionError) as raised:
            await create_completion(client, BODY)
    finally:
        await client.close()
    return raised.value


async def test_a_refused_connection_is_a_transient_unavailable_model() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    error = await failed_call(f"http://127.0.0.1:{port}")
    assert not isinstance(error, openai.APITimeoutError)
    assert isinstance(error.__cause__, httpx2.ConnectError)
    failure = model_failure(error)
    assert failure is not None and failure.error_type == "model_unavailable" and failure.transient


async def test_a_connection_closed_before_the_answer_is_a_protocol_error_not_a_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    async def hang_up(writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.transport.abort()

    error = await failed_call((await serve(hang_up)).url)
    assert not isinstance(error, openai.APITimeoutError)
    assert isinstance(error.__cause__, httpx2.RemoteProtocolError)


async def test_a_silent_server_is_a_read_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    answered = asyncio.Event()

    async def silent(writer: asyncio.StreamWriter, _: bytes) -> None:
        await answered.wait()

    try:
        error = await failed_call((await serve(silent)).url, read_timeout_s=0.3)
    finally:
        answered.set()
    assert isinstance(error, openai.APITimeoutError)
    assert isinstance(error.__cause__, httpx2.ReadTimeout)


async def test_a_call_that_waits_past_its_timeout_for_a_connection_is_a_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    answered = asyncio.Event()

    async def silent(writer: asyncio.StreamWriter, _: bytes) -> None:
        await answered.wait()

    server = await serve(silent)
    client = client_for(server.url, [server.url], timeout=httpx2.Timeout(30.0, pool=0.2), connections=1)
    holding = asyncio.create_task(create_completion(client, BODY))
    try:
        while not server.requests:  # the one connection is taken by a call the server never answers
            await asyncio.sleep(0.01)
        with pytest.raises(openai.APITimeoutError) as raised:
            await create_completion(client, BODY)
        assert isinstance(raised.value.__cause__, httpx2.ConnectTimeout)
        assert len(server.requests) == 1  # the second call never had a connection to send on
    finally:
        holding.cancel()
        answered.set()
        await client.close()

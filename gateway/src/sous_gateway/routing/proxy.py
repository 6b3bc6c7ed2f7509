"""Forwarding a request to its service: pooled client, streamed responses, signed context."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from sous_service.errors import ApiError
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_request
from sous_service.observability.tracing import recorded_traceparent

logger = logging.getLogger("sous.gateway.proxy")

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Credentials stay at the gateway: services trust only the signed context.
_NOT_FORWARDED = _HOP_BY_HOP | {"authorization", "x-api-key", "cookie", CONTEXT_HEADER.lower(), "traceparent"}
_NOT_RETURNED = _HOP_BY_HOP - {"content-length"}
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def child_traceparent(incoming: str | None) -> str:
    """Continue the caller's W3C trace with a new span id, or start a new sampled trace."""
    match = _TRACEPARENT.match((incoming or "").strip().lower())
    if match and match.group(1) != "0" * 32 and match.group(2) != "0" * 16:
        return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.decode("latin-1").split(",") if t.strip())
    return tokens


@dataclass(frozen=True)
class StreamPolicy:
    """How a long-lived response is held: its own client (pool), a maximum lifetime, a release hook."""

    client: httpx.AsyncClient
    max_lifetime_s: float
    on_close: Callable[[], None]


class UpstreamProxy:
    def __init__(
        self,
        upstreams: dict[str, str],
        client: httpx.AsyncClient,
        internal_secret: str,
    ) -> None:
        self._upstreams = upstreams
        self._client = client
        self._secret = internal_secret

    def _request_headers(self, request: Request, request_id: str, trusted_peer: bool) -> list[tuple[bytes, bytes]]:
        raw = request.headers.raw
        dropped = _NOT_FORWARDED | _connection_tokens(raw) | {"x-forwarded-for"}
        # Surrounding whitespace is not part of a header value (RFC 9110 5.5); the HTTP client refuses to
        # send it, so it is trimmed here rather than turned into a 502.
        headers = [
            (k, v.strip(b" \t"))
            for k, v in raw
            if k.decode("latin-1").lower() not in dropped and k.lower() != b"x-request-id"
        ]
        headers += [
            (b"x-request-id", request_id.encode()),
            # The gateway's own span when tracing is on (the service's span is its child), else a child id.
            (
                b"traceparent",
                (recorded_traceparent() or child_traceparent(request.headers.get("traceparent"))).encode(),
            ),
            (b"x-forwarded-proto", request.url.scheme.encode()),
        ]
        client = request.client.host if request.client else ""
        if client:
            # A chain is passed on only from a trusted proxy; anyone else could write any history into it.
            forwarded_for = ", ".join(request.headers.getlist("x-forwarded-for")) if trusted_peer else ""
            chain = f"{forwarded_for}, {client}" if forwarded_for else client
            headers.append((b"x-forwarded-for", chain.encode("latin-1")))
        return headers

    async def forward(
        self,
        request: Request,
        service: str,
        body: bytes,
        context: InternalContext,
        request_id: str,
        *,
        trusted_peer: bool = False,
        stream: StreamPolicy | None = None,
    ) -> StreamingResponse:
        base = self._upstreams[service]
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        query = request.scope.get("query_string", b"")
        url = base + raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        client = stream.client if stream else self._client
        upstream_request = client.build_request(
            request.method, url, headers=self._request_headers(request, request_id, trusted_peer), content=body
        )
        # Signed over what is actually sent (the client may re-encode the URL), for this service only.
        upstream_request.headers[CONTEXT_HEADER] = sign_request(
            context,
            self._secret,
            method=request.method,
            target=upstream_request.url.raw_path.decode("latin-1"),
            body=body,
            service=service,
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.TimeoutException as exc:
            logger.warning("%s timed out on %s %s", service, request.method, request.scope["path"])
            raise ApiError(504, "upstream_timeout", f"the {service} service did not answer in time") from exc
        except httpx.HTTPError as exc:
            logger.warning("%s unreachable on %s %s: %s", service, request.method, request.scope["path"], exc)
            raise ApiError(502, "upstream_unavailable", f"the {service} service is unavailable") from exc

        dropped = _NOT_RETURNED | _connection_tokens(upstream.headers.raw)
        response_headers = [
            (k.lower(), v) for k, v in upstream.headers.raw if k.decode("latin-1").lower() not in dropped
        ]
        response_headers = [(k, v) for k, v in response_headers if k != b"x-request-id"]
        response_headers.append((b"x-request-id", request_id.encode()))
        if upstream.headers.get("content-type", "").startswith("text/event-stream"):
            response_headers.append((b"x-accel-buffering", b"no"))
        deadline = asyncio.get_running_loop().time() + stream.max_lifetime_s if stream else None
        response = _RelayResponse(
            _relay(upstream, service, deadline),
            upstream,
            stream.on_close if stream else None,
            status_code=upstream.status_code,
        )
        response.raw_headers = response_headers
        return response


class _RelayResponse(StreamingResponse):
    """Closes the upstream response and releases the stream slot however the exchange ends, even when the
    client leaves before the first chunk (the relay generator then never runs its own cleanup)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        upstream: httpx.Response,
        on_close: Callable[[], None] | None,
        status_code: int,
    ) -> None:
        super().__init__(content, status_code=status_code)
        self._upstream = upstream
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._upstream.aclose()
            if self._on_close is not None:
                self._on_close()


async def _relay(upstream: httpx.Response, service: str, deadline: float | None) -> AsyncIterator[bytes]:
    """Pass body chunks through as they arrive (no buffering: SSE events reach the caller at once), until
    the upstream ends, breaks off, stays silent past the read timeout, or the lifetime is over."""
    chunks = upstream.aiter_raw()
    loop = asyncio.get_running_loop()
    try:
        while True:
            if deadline is None:
                chunk = await chunks.__anext__()
            else:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError
                chunk = await asyncio.wait_for(chunks.__anext__(), remaining)
            yield chunk
    except StopAsyncIteration:
        pass
    except TimeoutError:
        # The client reconnects with Last-Event-ID and resumes where it was.
        logger.info("%s stream closed at its maximum lifetime", service)
    except httpx.HTTPError as exc:
        logger.warning("%s response stream broke off: %s", service, exc)
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()

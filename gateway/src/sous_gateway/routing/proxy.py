"""Forwarding a request to its service: pooled client, streamed responses, signed context."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import StreamingResponse

from sous_service.errors import ApiError
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context

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


class UpstreamProxy:
    def __init__(
        self,
        upstreams: dict[str, str],
        client: httpx.AsyncClient,
        internal_secret: str,
        connect_timeout_s: float,
    ) -> None:
        self._upstreams = upstreams
        self._client = client
        self._secret = internal_secret
        self._stream_timeout = httpx.Timeout(connect=connect_timeout_s, read=None, write=30.0, pool=connect_timeout_s)

    def _request_headers(
        self, request: Request, context: InternalContext, request_id: str
    ) -> list[tuple[bytes, bytes]]:
        raw = request.headers.raw
        dropped = _NOT_FORWARDED | _connection_tokens(raw)
        # Surrounding whitespace is not part of a header value (RFC 9110 5.5); the HTTP client refuses to
        # send it, so it is trimmed here rather than turned into a 502.
        headers = [
            (k, v.strip(b" \t"))
            for k, v in raw
            if k.decode("latin-1").lower() not in dropped and k.lower() != b"x-request-id"
        ]
        client = request.client.host if request.client else ""
        forwarded_for = request.headers.get("x-forwarded-for")
        headers += [
            (CONTEXT_HEADER.encode(), sign_context(context, self._secret).encode()),
            (b"x-request-id", request_id.encode()),
            (b"traceparent", child_traceparent(request.headers.get("traceparent")).encode()),
            (b"x-forwarded-proto", request.url.scheme.encode()),
        ]
        if client:
            chain = f"{forwarded_for}, {client}" if forwarded_for else client
            headers = [(k, v) for k, v in headers if k.lower() != b"x-forwarded-for"]
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
        stream: bool = False,
    ) -> StreamingResponse:
        base = self._upstreams[service]
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        query = request.scope.get("query_string", b"")
        url = base + raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        upstream_request = self._client.build_request(
            request.method,
            url,
            headers=self._request_headers(request, context, request_id),
            content=body,
            timeout=self._stream_timeout if stream else httpx.USE_CLIENT_DEFAULT,
        )
        try:
            upstream = await self._client.send(upstream_request, stream=True)
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
        response = StreamingResponse(_relay(upstream, service), status_code=upstream.status_code)
        response.raw_headers = response_headers
        return response


async def _relay(upstream: httpx.Response, service: str) -> AsyncIterator[bytes]:
    """Pass body chunks through as they arrive (no buffering: SSE events reach the caller at once)."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        logger.warning("%s response stream broke off: %s", service, exc)
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()

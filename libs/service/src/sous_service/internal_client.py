"""Signing outgoing internal requests with httpx: each request gets its own bound, single-use header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator

import httpx

from sous_events.tracing import current_traceparent
from sous_service.internal_context import (
    CONTEXT_HEADER,
    InternalContext,
    InvalidContext,
    decode_context,
    sign_request,
)


def sign_httpx_request(request: httpx.Request, context: InternalContext, secret: str, service: str) -> None:
    request.headers[CONTEXT_HEADER] = sign_request(
        context,
        secret,
        method=request.method,
        target=request.url.raw_path.decode("latin-1"),
        body=request.content,
        service=service,
    )


class ContextAuth(httpx.Auth):
    """`httpx.AsyncClient(auth=ContextAuth(...))`: a service calling another one as `context`."""

    requires_request_body = True

    def __init__(self, context: InternalContext, secret: str, service: str) -> None:
        self._context = context
        self._secret = secret
        self._service = service

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sign_httpx_request(request, self._context, self._secret, self._service)
        if traceparent := current_traceparent():  # the called service's span continues this trace
            request.headers.setdefault("traceparent", traceparent)
        yield request


def rebind_hook(secret: str, service: str) -> Callable[[httpx.Request], Awaitable[None]]:
    """A request event hook for harnesses that build one `sign_context` header per caller: the identity in
    it is re-signed bound to each request actually sent (a header reused as-is would be refused)."""

    async def hook(request: httpx.Request) -> None:
        header = request.headers.get(CONTEXT_HEADER)
        if not header:
            return
        await request.aread()
        try:
            identity = decode_context(header, secret)
        except InvalidContext:
            return  # a deliberately broken header is sent as it is
        sign_httpx_request(request, identity, secret, service)

    return hook

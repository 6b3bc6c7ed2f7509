"""The FastAPI app every service builds on: errors, request ids, health, internal-context dependency."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sous_service.body_guard import RefuseUnstorableText
from sous_service.errors import ApiError, FieldError, install_error_handlers, validation_error
from sous_service.internal_context import (
    CONTEXT_HEADER,
    DEFAULT_MAX_AGE_S,
    InternalContext,
    InvalidContext,
    ReplayCache,
    RequestBinding,
    body_digest,
    request_target,
    verify_context,
)
from sous_service.logs import correlation_id_var, request_id_var
from sous_service.observability.http import ObservabilityMiddleware

ReadinessCheck = Callable[[], Awaitable[bool]]


class RequestIdMiddleware:
    """The request's id (the caller's X-Request-ID, else a new one) and correlation id for its logs, and
    the id on the response. Plain ASGI, as every middleware here: no task per request and no stream per body
    chunk in between, which a live event stream would pay for on every event."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        corr = correlation_id_var.set(headers.get("x-correlation-id", request_id))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            correlation_id_var.reset(corr)


_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f]")


class RejectControlCharacters:
    """Control characters in a path or query value are never valid ids or filters; PostgreSQL and HTTP
    clients downstream refuse some of them, so they are turned away here as invalid input."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad = _CONTROL_CHARACTERS.search(scope.get("path", "")) is not None
        field = "path"
        if not bad and (query := scope.get("query_string", b"")):
            for key, value in QueryParams(query).multi_items():
                if _CONTROL_CHARACTERS.search(key + value):
                    bad, field = True, key
                    break
        if not bad:
            await self.app(scope, receive, send)
            return
        refusal = validation_error(
            [FieldError(field=field, message="control characters are not allowed", type="value_error")]
        )
        await refusal(scope, receive, send)


def health_router(
    checks: dict[str, ReadinessCheck], informational: dict[str, ReadinessCheck] | None = None
) -> APIRouter:
    """`checks` gate readiness; `informational` ones are reported only (a dependency whose loss must not
    take this process out of its load balancer, e.g. one upstream of the gateway)."""
    router = APIRouter(tags=["health"])
    extra = informational or {}

    @router.get("/healthz", summary="Liveness", description="The process is up and serving.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness",
        description="Ready when every dependency (database, broker) answers and every consumer has joined its group.",
        responses={503: {"description": "A dependency is not ready"}},
    )
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        reported = {name: await check() for name, check in extra.items()}
        content: dict[str, object] = {"status": "ready" if ready else "not_ready", "checks": results}
        if reported:
            content["dependencies"] = reported
        return JSONResponse(status_code=200 if ready else 503, content=content)

    return router


def create_service_app(
    *,
    title: str,
    description: str,
    internal_secret: str,
    context_max_age_s: float = DEFAULT_MAX_AGE_S,
    service_name: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]] | None = None,
    readiness: dict[str, ReadinessCheck] | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.internal_secret = internal_secret
    app.state.context_max_age_s = context_max_age_s
    # Contexts are bound to their target service: one signed for the catalog is refused here.
    app.state.service_name = service_name
    app.state.replay_cache = ReplayCache(context_max_age_s)
    install_error_handlers(app)
    app.add_middleware(RejectControlCharacters)
    app.add_middleware(RefuseUnstorableText)
    app.add_middleware(RequestIdMiddleware)
    # Outermost: spans, request metrics and the access line cover every response, refusals included.
    app.add_middleware(ObservabilityMiddleware, service=service_name)
    app.include_router(health_router(readiness or {}))
    return app


def accepts_event_stream(request: Request) -> bool:
    """Whether the caller asked for Server-Sent Events (an execute then answers with the run's live events)."""
    return "text/event-stream" in request.headers.get("accept", "").lower()


async def require_context(request: Request) -> InternalContext:
    """Every non-health route depends on this: the gateway's signed context, bound to this very request
    (method, path and query, body, this service) and not seen before, or 401."""
    state = request.app.state
    expected = RequestBinding(
        method=request.method,
        target=request_target(request.scope.get("raw_path") or request.scope["path"], request.scope["query_string"]),
        body_sha256=body_digest(await request.body()),
        service=state.service_name,
    )
    try:
        return verify_context(
            request.headers.get(CONTEXT_HEADER),
            state.internal_secret,
            expected=expected,
            replay=state.replay_cache,
            max_age_s=state.context_max_age_s,
        )
    except InvalidContext as exc:
        raise ApiError(401, "invalid_internal_context", f"request refused: {exc}") from exc


Context = Annotated[InternalContext, Depends(require_context)]


def require_scope(scope: str) -> Any:
    """`dependencies=[require_scope("recipes:write")]`: the service checks the scope itself, so a request
    the gateway routed wrongly (or a forged path) still needs the right grant to do anything."""

    async def check(ctx: Context) -> InternalContext:
        if not ctx.has_scope(scope):
            raise ApiError(403, "missing_scope", f"this operation needs the '{scope}' scope")
        return ctx

    return Depends(check)


async def lifespan_noop(_: FastAPI) -> AsyncIterator[None]:
    yield

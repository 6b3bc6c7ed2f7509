"""One ASGI middleware for every HTTP surface: a SERVER span continuing the caller's `traceparent`, the
request metrics by route template, and one access log line per request (never headers or bodies)."""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sous_service.logs import request_id_var
from sous_service.observability.metrics import HTTP_DURATION, HTTP_REQUESTS
from sous_service.observability.tracing import fail, parent_context, recorded_traceparent, tracer

access_log = logging.getLogger("sous.access")

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The route's path template (`/api/x/{id}`), never the raw path: bounded label values, no ids in logs.
    A router that matches a catch-all (the gateway) names the template it resolved in `state["route"]`."""
    state = scope.get("state")
    if isinstance(state, dict) and isinstance(state.get("route"), str):
        return str(state["route"])
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, service: str, access_log: bool = True) -> None:
        self.app = app
        self.service = service
        self.log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        started = time.perf_counter()
        status = [0]
        request_id = [_header(scope, b"x-request-id") or ""]

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                for key, value in message.get("headers", []):
                    if key.lower() == b"x-request-id":
                        request_id[0] = value.decode("latin-1")
            await send(message)

        attributes: dict[str, Any] = {"http.request.method": method, "url.path": str(scope.get("path", ""))}
        with tracer("sous.http").start_as_current_span(
            method,
            context=parent_context(_header(scope, b"traceparent")),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if inner := recorded_traceparent():
                # Instrumentation further in (FastAPI's own server and operation spans) reads the header:
                # it sees this span as the caller, so a request is one tree under this span.
                headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"traceparent"]
                scope["headers"] = [*headers, (b"traceparent", inner.encode("latin-1"))]
            try:
                await self.app(scope, receive, observed_send)
            except BaseException as exc:
                fail(span, exc)
                status[0] = status[0] or 500
                raise
            finally:
                route = route_template(scope)
                code = status[0] or 500
                elapsed = time.perf_counter() - started
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", code)
                span.set_attribute("sous.service", self.service)
                if code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                HTTP_REQUESTS.labels(self.service, method, route, str(code)).inc()
                HTTP_DURATION.labels(self.service, method, route).observe(elapsed)
                if self.log:
                    token = request_id_var.set(request_id[0])
                    try:
                        access_log.info(
                            "%s %s %d %.1fms",
                            method,
                            route,
                            code,
                            elapsed * 1000,
                            extra={
                                "http_method": method,
                                "route": route,
                                "status": code,
                                "duration_ms": round(elapsed * 1000, 3),
                            },
                        )
                    finally:
                        request_id_var.reset(token)

"""Pure ASGI middleware (no response buffering, so streams pass straight through):
request ids, the body size limit, and one access log line per request (never headers or bodies)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sous_gateway.routing.path_guard import check_path
from sous_service.errors import ApiError
from sous_service.logs import correlation_id_var, request_id_var
from sous_service.observability.http import route_template

access_log = logging.getLogger("sous.gateway.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _send_error(send: Send, status: int, code: str, detail: str, request_id: str) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status_holder = [0]
        rid_token = request_id_var.set(request_id)
        corr_token = correlation_id_var.set(request_id)
        try:
            try:
                check_path(scope.get("raw_path") or scope["path"].encode(), scope["path"])
            except ApiError as exc:
                status_holder[0] = exc.status_code
                await _send_error(send, exc.status_code, exc.code, exc.detail, request_id)
                return
            receive = await self._limit_body(scope, receive, send, request_id, status_holder)
            if status_holder[0]:
                return

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_holder[0] = message["status"]
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                    headers.append((b"x-request-id", request_id.encode()))
                    message["headers"] = headers
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            route = route_template(scope)
            elapsed_ms = (time.perf_counter() - started) * 1000
            access_log.info(
                "%s %s %s %.1fms principal=%s",
                scope["method"],
                route,
                status_holder[0],
                elapsed_ms,
                state.get("principal_id", "-"),
                extra={
                    "http_method": scope["method"],
                    "route": route,
                    "status": status_holder[0],
                    "duration_ms": round(elapsed_ms, 3),
                },
            )
            request_id_var.reset(rid_token)
            correlation_id_var.reset(corr_token)

    async def _limit_body(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, status_holder: list[int]
    ) -> Receive:
        """Refuse an oversized body with 413: at once from Content-Length, or while reading a chunked one."""
        limit = self.max_body_bytes
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                status_holder[0] = 413
                await _send_error(send, 413, "payload_too_large", f"the request body exceeds {limit} bytes", request_id)
            return receive
        if _header(scope, b"transfer-encoding") is None:
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                status_holder[0] = 413
                await _send_error(send, 413, "payload_too_large", f"the request body exceeds {limit} bytes", request_id)
                return receive
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return replay

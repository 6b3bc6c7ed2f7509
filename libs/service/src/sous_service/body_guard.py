"""Refuse JSON request bodies carrying text PostgreSQL cannot store (NUL, lone surrogates) with a 422.

Without it such a value travels into an event or a jsonb column and the write fails as a 500. The check
is cheap: a body is parsed only when its bytes contain a `\\u` escape (the only way JSON can carry either).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sous_service.errors import FieldError, validation_error
from sous_service.text import has_refused


def _join(path: str, part: object) -> str:
    return f"{path}.{part}" if path else str(part)


def refused_path(value: Any, path: str = "") -> str | None:
    """The field path (`a.0.b`, as in other 422s; `body` for the body itself) of the first string, or
    key, holding a refused character."""
    if isinstance(value, str):
        return (path or "body") if has_refused(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if has_refused(str(key)):
                return _join(path, repr(key)) if path else "body"
            found = refused_path(item, _join(path, key))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = refused_path(item, _join(path, index))
            if found:
                return found
    return None


class RefuseUnstorableText:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if b"json" not in headers.get(b"content-type", b""):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        if b"\\u" in body:
            try:
                found = refused_path(json.loads(body))
            except (ValueError, UnicodeDecodeError):
                found = None  # not JSON: the route's own validation answers
            if found:
                error = FieldError(field=found, message="text contains NUL or unpaired surrogates", type="value_error")
                await validation_error([error])(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

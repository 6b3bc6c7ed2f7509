"""The HTTP surface: OpenAI-compatible routes plus `/_sous/...` test hooks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from sous_local.model_server.protocol import ChatRequest, error_body
from sous_local.model_server.replies import Reply, reply_to, request_directives, system_prompt
from sous_local.model_server.state import CallLog, Counters, FailureBudgets

DEFAULT_MODEL = "sous-offline-1"
# Agents written for hosted providers keep working unchanged: any model name is answered.
MODEL_ALIASES = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-3.5-turbo")
RETRY_AFTER_SECONDS = 1
_CREATED = 1_700_000_000


def create_app() -> FastAPI:
    app = FastAPI(title="Sous offline model server", version="1")
    calls = CallLog()
    budgets = FailureBudgets()
    counters = Counters()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        return JSONResponse(error_body(message, "invalid_request_error"), status_code=400)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    @app.get("/models", include_in_schema=False)
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [_model(name) for name in (DEFAULT_MODEL, *MODEL_ALIASES)]}

    @app.get("/v1/models/{model_id}")
    async def get_model(model_id: str) -> dict[str, Any]:
        return _model(model_id)

    @app.post("/v1/chat/completions", response_model=None)
    @app.post("/chat/completions", response_model=None, include_in_schema=False)
    async def chat_completions(body: ChatRequest) -> JSONResponse | StreamingResponse:
        messages = [m.model_dump(exclude_none=True) for m in body.messages]
        logged = calls.record(body.model, body.all_text, messages)
        found = request_directives(body)
        counters.count_tags(found.tags)
        if found.latency_ms:
            await asyncio.sleep(found.latency_ms / 1000)
        failure = budgets.first_due(found.failures, system_prompt(body))
        if failure is not None:
            logged.status = failure.status
            return _failure_response(failure.status)
        reply = reply_to(body, scripted=counters.next_answer(found.answers))
        logged.status = 200
        logged.total_tokens = reply.prompt_tokens + reply.completion_tokens
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(
                _stream(completion_id, body.model, reply, include_usage), media_type="text/event-stream"
            )
        return JSONResponse(_completion(completion_id, body.model, reply))

    @app.get("/_sous/calls")
    async def list_calls(contains: str | None = None) -> dict[str, Any]:
        matching = calls.matching(contains)
        return {
            "count": len(matching),
            "total_tokens": sum(call.total_tokens for call in matching),
            "calls": [call.as_json() for call in matching],
        }

    @app.get("/_sous/counters")
    async def read_counters() -> dict[str, dict[str, int]]:
        """Calls per `[[tag:NAME]]` and per `[[answers:KEY ...]]` key since the last reset."""
        return counters.as_json()

    @app.post("/_sous/reset")
    async def reset() -> dict[str, str]:
        calls.clear()
        budgets.clear()
        counters.clear()
        return {"status": "reset"}

    return app


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _CREATED, "owned_by": "sous"}


def _failure_response(status: int) -> JSONResponse:
    if status == 429:
        return JSONResponse(
            error_body("Rate limit reached (offline directive).", "requests", "rate_limit_exceeded"),
            status_code=429,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    error_type = "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse(error_body(f"Simulated failure {status} (offline directive).", error_type), status)


def _completion(completion_id: str, model: str, reply: Reply) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "sous-offline",
        "choices": [{"index": 0, "message": reply.message(), "finish_reason": reply.finish_reason}],
        "usage": reply.usage,
    }


async def _stream(completion_id: str, model: str, reply: Reply, include_usage: bool) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage
        return f"data: {json.dumps(body)}\n\n"

    delta: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        delta["tool_calls"] = [{"index": i, **call.as_openai()} for i, call in enumerate(reply.tool_calls)]
    yield chunk([{"index": 0, "delta": delta, "finish_reason": None}])
    yield chunk([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])
    if include_usage:
        yield chunk([], reply.usage)
    yield "data: [DONE]\n\n"

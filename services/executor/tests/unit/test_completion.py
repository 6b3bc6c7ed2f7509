"""Unit tests: a chat completion posted through the official client as plain JSON, read into a Completion."""

from __future__ import annotations

import json

import httpx2
import pytest
from openai import AsyncOpenAI

from sous_executor.engine.attempt import classify
from sous_executor.llm.completion import Completion, ModelResponseInvalid, ToolCallRequest, Usage, create_completion

pytestmark = pytest.mark.unit
ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "search", "arguments": '{"q": 1}'}},
                    {"id": "t2", "type": "custom"},
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}


def client_answering(status: int, content: bytes, seen: list[httpx2.Request]) -> AsyncOpenAI:
    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(status, content=content, headers={"content-type": "application/json"})

    return AsyncOpenAI(
        base_url="http://model.test/v1",
        api_key="key-1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handle)),
    )


async def test_the_body_is_posted_as_given_with_the_key_and_the_answer_is_read() -> None:
    seen: list[httpx2.Request] = []
    client = client_answering(200, json.dumps(ANSWER).encode(), seen)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}

    completion = await create_completion(client, body)

    assert completion == Completion(
        answered=True,
        content=None,
        tool_calls=(ToolCallRequest("t1", "search", '{"q": 1}'),),
        usage=Usage(prompt_tokens=3, completion_tokens=4),
    )
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "http://model.test/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer key-1"
    assert json.loads(request.content) == body


async def test_no_choices_and_no_usage() -> None:
    client = client_answering(200, b'{"choices": []}', [])
    assert await create_completion(client, {"model": "m", "messages": []}) == Completion(False, None, (), None)


@pytest.mark.parametrize("content", [b"not json", b"[1]", b'{"choices": [{"message": {"content": 5}}]}'])
async def test_an_answer_that_is_not_a_completion_is_a_model_error(content: bytes) -> None:
    client = client_answering(200, content, [])
    with pytest.raises(ModelResponseInvalid) as raised:
        await create_completion(client, {"model": "m", "messages": []})
    assert classify(raised.value, None).error_type == "model_error"


async def test_status_errors_stay_the_clients_own() -> None:
    client = client_answering(429, b'{"error": {"code": "rate_limit_exceeded"}}', [])
    with pytest.raises(Exception) as raised:
        await create_completion(client, {"model": "m", "messages": []})
    assert classify(raised.value, None).error_type == "rate_limited"

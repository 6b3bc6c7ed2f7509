"""One chat completion through the official client, as the agent loop reads it.

The request body is built by the agent loop from plain JSON values, so it is posted as it is: the client's
typed `create` would walk every message through its parameter types on every call to transform nothing.
The answer is read from the response's JSON into the few fields a step uses, instead of the client's full
response model. Authentication, timeouts, connection handling and status errors stay the client's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
from openai import AsyncOpenAI
from openai._types import RequestOptions

CHAT_PATH = "/chat/completions"
# What `chat.completions.create` asks of the client: the bearer key in the request's headers.
CHAT_OPTIONS: RequestOptions = {"security": {"bearer_auth": True}}


class ModelResponseInvalid(Exception):
    """The model endpoint answered 2xx with a body that is not a chat completion."""


@dataclass(frozen=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Completion:
    """The first choice's message (`answered` False when the model returned no choice) and the usage."""

    answered: bool
    content: str | None
    tool_calls: tuple[ToolCallRequest, ...]
    usage: Usage | None


async def create_completion(client: AsyncOpenAI, body: Mapping[str, Any]) -> Completion:
    response = await client.post(CHAT_PATH, body=body, cast_to=httpx2.Response, options=CHAT_OPTIONS)
    return parse_completion(response.content)


def parse_completion(content: bytes) -> Completion:
    try:
        return _completion(json.loads(content))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ModelResponseInvalid("the model endpoint's answer is not a chat completion") from exc


def _completion(data: dict[str, Any]) -> Completion:
    usage = data.get("usage")
    counted = None if usage is None else Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
    choices = data.get("choices") or []
    if not choices:
        return Completion(False, None, (), counted)
    message = choices[0].get("message") or {}
    content = message.get("content")
    calls = tuple(
        ToolCallRequest(str(call.get("id") or ""), str(function.get("name") or ""), _text(function.get("arguments")))
        for call in message.get("tool_calls") or ()
        if (function := call.get("function")) is not None
    )
    return Completion(True, None if content is None else _text(content), calls, counted)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value

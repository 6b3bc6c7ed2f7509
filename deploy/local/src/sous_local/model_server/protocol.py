"""The slice of the OpenAI chat completions request the offline model reads; unknown fields are kept."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        """Plain text of the message; multi-part content keeps only its text parts."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")

    @property
    def tool_call_arguments(self) -> list[str]:
        return [str(call.get("function", {}).get("arguments", "")) for call in self.tool_calls or []]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def offered_tools(self) -> dict[str, dict[str, Any]]:
        """Tool name -> its JSON Schema parameters, in the order offered."""
        offered: dict[str, dict[str, Any]] = {}
        for tool in self.tools or []:
            function = tool.get("function") or {}
            if tool.get("type", "function") == "function" and isinstance(function.get("name"), str):
                parameters = function.get("parameters")
                offered[function["name"]] = parameters if isinstance(parameters, dict) else {}
        return offered

    @property
    def all_text(self) -> str:
        return "\n".join(message.text for message in self.messages)

    def fingerprint(self) -> str:
        """Canonical form of the conversation: equal requests give equal answers."""
        return json.dumps([m.model_dump(exclude_none=True) for m in self.messages], sort_keys=True)


def count_tokens(text: str) -> int:
    """Whitespace words: crude, but stable across runs and platforms, which is what tests need."""
    return len(text.split())


def prompt_tokens(request: ChatRequest) -> int:
    return sum(
        count_tokens(message.text) + sum(count_tokens(a) for a in message.tool_call_arguments)
        for message in request.messages
    )


def error_body(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}

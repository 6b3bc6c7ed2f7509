"""The workflow's own model calls (planner, final answer), through the engine's client factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sous_executor.config import ExecutorSettings
from sous_executor.llm.client import ClientFactory
from sous_executor.llm.pricing import cost_usd
from sous_service.text import clean_text


@dataclass(frozen=True)
class Completion:
    content: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


async def complete(
    clients: ClientFactory,
    settings: ExecutorSettings,
    workspace_id: str,
    agent: dict[str, Any] | None,
    messages: list[dict[str, Any]],
    response_format: dict[str, Any] | None = None,
) -> Completion:
    """One chat completion with the agent's model (the default model when the workflow names no agent)."""
    model_config = (agent or {}).get("model_config") or {}
    target = await clients.target(model_config, workspace_id)
    kwargs: dict[str, Any] = {"model": target.model, "messages": messages}
    if response_format is not None:
        kwargs["response_format"] = response_format
    if target.temperature is not None:
        kwargs["temperature"] = target.temperature
    response = await clients.client(target).chat.completions.create(**kwargs)
    usage = response.usage
    prompt = usage.prompt_tokens if usage else 0
    completion = usage.completion_tokens if usage else 0
    content = response.choices[0].message.content if response.choices else None
    return Completion(
        clean_text(content or ""), prompt, completion, cost_usd(settings.prices, target.model, prompt, completion)
    )

"""AsyncOpenAI clients per agent model_config: OpenAI or any OpenAI-compatible base_url."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from openai import AsyncOpenAI

from sous_executor.config import ExecutorSettings

OPENAI_BASE_URL = "https://api.openai.com/v1"


class ModelConfigError(Exception):
    """The agent's model_config cannot be used (host not allowed, missing key...)."""


@dataclass(frozen=True)
class ModelTarget:
    base_url: str
    api_key: str
    model: str
    temperature: float | None
    max_tokens: int | None


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_target(
    model_config: Mapping[str, Any], settings: ExecutorSettings, environ: Mapping[str, str] | None = None
) -> ModelTarget:
    env = os.environ if environ is None else environ
    provider = str(model_config.get("provider") or "offline").lower()
    base_url = str(model_config.get("base_url") or "")
    if not base_url:
        base_url = OPENAI_BASE_URL if provider == "openai" else settings.model_base_url
    elif provider == "offline":
        base_url = base_url or settings.model_base_url
    host = (urlsplit(base_url).hostname or "").lower()
    default_host = (urlsplit(settings.model_base_url).hostname or "").lower()
    allowed = host == default_host or host in [h.lower() for h in settings.allowed_model_host_list]
    if _is_loopback(host) and host != default_host:
        allowed = settings.loopback_allowed
    if not allowed:
        raise ModelConfigError(f"model host {host!r} is not allowed (SOUS_ALLOWED_MODEL_HOSTS)")
    key_env = model_config.get("api_key_env")
    if key_env:
        api_key = env.get(str(key_env), "")
        if not api_key:
            raise ModelConfigError(f"the secret {key_env!r} named by api_key_env is not set")
    else:
        api_key = settings.model_api_key_default
    temperature = model_config.get("temperature")
    max_tokens = model_config.get("max_tokens")
    return ModelTarget(
        base_url=base_url,
        api_key=api_key,
        model=str(model_config.get("model_id") or model_config.get("model") or "sous-offline-1"),
        temperature=None if temperature is None else float(temperature),
        max_tokens=None if max_tokens is None else int(max_tokens),
    )


class ClientFactory:
    """One AsyncOpenAI per (base_url, key); retries are ours (error_handling), so the client never retries."""

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, str], AsyncOpenAI] = {}

    def client(self, target: ModelTarget) -> AsyncOpenAI:
        key = (target.base_url, target.api_key)
        client = self._clients.get(key)
        if client is None:
            client = AsyncOpenAI(
                base_url=target.base_url,
                api_key=target.api_key,
                max_retries=0,
                timeout=self.settings.llm_request_timeout_s,
            )
            self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

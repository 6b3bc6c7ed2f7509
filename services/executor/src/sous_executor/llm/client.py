"""AsyncOpenAI clients per agent model_config: OpenAI or any OpenAI-compatible base_url.

The destination goes through the egress policy (exact origins, no internal addresses outside
development), the key through workspace credentials (a secret of the agent's workspace, or an
environment variable the operator granted to it), and the model through the price table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from openai import AsyncOpenAI

from sous_executor.config import ExecutorSettings
from sous_executor.egress import EgressDenied, EgressPolicy, Origin
from sous_executor.llm.pricing import price_of
from sous_executor.llm.transport import AiohttpTransport
from sous_executor.secrets.resolver import Credentials, CredentialUnavailable

OPENAI_BASE_URL = "https://api.openai.com/v1"


class ModelConfigError(Exception):
    """The agent's model_config cannot be used (destination not allowed, missing key, unpriced model)."""


@dataclass(frozen=True)
class ModelTarget:
    base_url: str
    api_key: str
    model: str
    temperature: float | None
    max_tokens: int | None


class _EgressTransport(httpx2.AsyncBaseTransport):
    """The openai client's HTTP stack is httpx2; every request it sends, redirects included, is checked."""

    def __init__(self, policy: EgressPolicy, max_connections: int) -> None:
        self.policy = policy
        # httpx's default pool (100 connections, 20 kept alive) would queue runs past 100 and reopen a
        # connection for most calls once more than 20 are in flight: every connection is kept alive.
        self.inner = AiohttpTransport(max_connections)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await self.policy.check(str(request.url))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def default_origin(settings: ExecutorSettings) -> Origin:
    parts = urlsplit(settings.model_base_url)
    return Origin.parse(f"{parts.scheme}://{parts.netloc}")


def model_policy(settings: ExecutorSettings) -> EgressPolicy:
    """The operator's own endpoint is trusted; agents' base_urls must be on SOUS_ALLOWED_MODEL_ORIGINS."""
    return EgressPolicy(
        settings.allowed_model_origin_list,
        block_private=settings.block_private_egress,
        trusted=[default_origin(settings)],
    )


def base_url_of(model_config: Mapping[str, Any], settings: ExecutorSettings) -> str:
    provider = str(model_config.get("provider") or "offline").lower()
    base_url = str(model_config.get("base_url") or "")
    if not base_url:
        base_url = OPENAI_BASE_URL if provider == "openai" else settings.model_base_url
    return base_url


def resolve_target(model_config: Mapping[str, Any], settings: ExecutorSettings) -> ModelTarget:
    """For callers without a workspace: allowed origins (checked without DNS) and the default key only.

    A configuration that references a key needs the workspace to resolve it: use ClientFactory.target.
    """
    if model_config.get("api_key_secret") or model_config.get("api_key_env"):
        raise ModelConfigError("a model key reference is resolved per workspace only")
    base_url = base_url_of(model_config, settings)
    if not model_policy(settings).allowed_origin(base_url):
        raise ModelConfigError("model endpoint refused by the egress policy")
    model = str(model_config.get("model_id") or model_config.get("model") or "sous-offline-1")
    if settings.priced_models_required and price_of(settings.prices, model) is None:
        raise ModelConfigError(f"model {model[:100]!r} has no price (SOUS_PRICE_TABLE); unpriced models are refused")
    temperature = model_config.get("temperature")
    max_tokens = model_config.get("max_tokens")
    return ModelTarget(
        base_url=base_url,
        api_key=settings.model_api_key_default,
        model=model,
        temperature=None if temperature is None else float(temperature),
        max_tokens=None if max_tokens is None else int(max_tokens),
    )


class ClientFactory:
    """One AsyncOpenAI per (base_url, key); retries are ours (error_handling), so the client never retries."""

    def __init__(
        self, settings: ExecutorSettings, credentials: Credentials, policy: EgressPolicy | None = None
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.policy = policy or model_policy(settings)
        self._clients: dict[tuple[str, str], AsyncOpenAI] = {}

    async def target(self, model_config: Mapping[str, Any], workspace_id: str) -> ModelTarget:
        base_url = base_url_of(model_config, self.settings)
        try:
            await self.policy.check(base_url)
        except EgressDenied as exc:
            raise ModelConfigError(f"model endpoint refused by the egress policy: {exc}") from exc
        try:
            key = await self.credentials.resolve(
                workspace_id,
                secret=model_config.get("api_key_secret"),
                env=model_config.get("api_key_env"),
                what="model API key",
            )
        except CredentialUnavailable as exc:
            raise ModelConfigError(str(exc)) from exc
        model = str(model_config.get("model_id") or model_config.get("model") or "sous-offline-1")
        if self.settings.priced_models_required and price_of(self.settings.prices, model) is None:
            raise ModelConfigError(
                f"model {model[:100]!r} has no price (SOUS_PRICE_TABLE); unpriced models are refused"
            )
        temperature = model_config.get("temperature")
        max_tokens = model_config.get("max_tokens")
        return ModelTarget(
            base_url=base_url,
            api_key=key or self.settings.model_api_key_default,
            model=model,
            temperature=None if temperature is None else float(temperature),
            max_tokens=None if max_tokens is None else int(max_tokens),
        )

    def client(self, target: ModelTarget) -> AsyncOpenAI:
        key = (target.base_url, target.api_key)
        client = self._clients.get(key)
        if client is None:
            client = AsyncOpenAI(
                base_url=target.base_url,
                api_key=target.api_key,
                max_retries=0,
                timeout=self.settings.llm_request_timeout_s,
                # Redirect hops go through the same policy as the first request.
                http_client=httpx2.AsyncClient(
                    transport=_EgressTransport(self.policy, self.settings.llm_connection_limit),
                    timeout=self.settings.llm_request_timeout_s,
                    follow_redirects=True,
                ),
            )
            self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

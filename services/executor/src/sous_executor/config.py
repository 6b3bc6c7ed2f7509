"""Executor settings, read from `SOUS_*` variables."""

from __future__ import annotations

import json
import os
import socket
import uuid
from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from sous_service.config import ServiceSettings

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o": {"prompt_per_1k": 0.0025, "completion_per_1k": 0.01},
    "gpt-4o-mini": {"prompt_per_1k": 0.00015, "completion_per_1k": 0.0006},
    "gpt-4.1": {"prompt_per_1k": 0.002, "completion_per_1k": 0.008},
    "gpt-4.1-mini": {"prompt_per_1k": 0.0004, "completion_per_1k": 0.0016},
    "gpt-3.5-turbo": {"prompt_per_1k": 0.0005, "completion_per_1k": 0.0015},
}


def _default_runner_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class ExecutorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SOUS_", extra="ignore", populate_by_name=True)

    service_name: str = "executor"
    port: int = Field(default=8002, validation_alias=AliasChoices("SOUS_EXECUTOR_PORT", "SOUS_PORT", "port"))
    database_name: str = "sous_executor"

    model_base_url: str = "http://127.0.0.1:8090/v1"
    model_api_key_default: str = "offline"
    # Comma-separated host names agents may point `base_url` at (besides model_base_url's host).
    allowed_model_hosts: str = "api.openai.com"
    max_concurrent_executions_per_workspace: int = Field(default=20, ge=1)
    lease_ttl_s: float = Field(default=15.0, gt=0)
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    sweeper_interval_s: float = Field(default=3.0, gt=0)
    scheduler_interval_s: float = Field(default=15.0, gt=0)
    cancel_poll_s: float = Field(default=0.25, gt=0)
    sse_poll_s: float = Field(default=0.2, gt=0)
    retry_jitter: float = Field(default=0.1, ge=0, le=1)
    llm_request_timeout_s: float = Field(default=120.0, gt=0)
    # JSON: {model: {prompt_per_1k, completion_per_1k}}, merged over the built-in table.
    price_table: str = ""
    catalog_url: str = "http://127.0.0.1:8001"
    # Comma-separated hosts the http_get tool may reach.
    http_tool_allowlist: str = ""
    tool_result_max_chars: int = 4000
    composio_api_key: str = Field(default="", validation_alias=AliasChoices("COMPOSIO_API_KEY", "composio_api_key"))
    composio_toolkits: str = ""
    runner_id: str = Field(default_factory=_default_runner_id)

    @property
    def allowed_model_host_list(self) -> list[str]:
        return _csv(self.allowed_model_hosts)

    @property
    def http_allowlist(self) -> list[str]:
        return _csv(self.http_tool_allowlist)

    @property
    def prices(self) -> dict[str, dict[str, float]]:
        table: dict[str, dict[str, float]] = {k: dict(v) for k, v in DEFAULT_PRICES.items()}
        if self.price_table:
            extra: Any = json.loads(self.price_table)
            if not isinstance(extra, dict):
                raise ValueError("SOUS_PRICE_TABLE must be a JSON object")
            for model, price in extra.items():
                table[str(model)] = {
                    "prompt_per_1k": float(price.get("prompt_per_1k", 0.0)),
                    "completion_per_1k": float(price.get("completion_per_1k", 0.0)),
                }
        return table

    @property
    def loopback_allowed(self) -> bool:
        return self.env in ("development", "test")

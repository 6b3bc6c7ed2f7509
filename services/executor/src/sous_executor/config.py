"""Executor settings, read from `SOUS_*` variables."""

from __future__ import annotations

import json
import os
import socket
import uuid
from typing import Any

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from sous_service.config import ServiceSettings

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o": {"prompt_per_1k": 0.0025, "completion_per_1k": 0.01},
    "gpt-4o-mini": {"prompt_per_1k": 0.00015, "completion_per_1k": 0.0006},
    "gpt-4.1": {"prompt_per_1k": 0.002, "completion_per_1k": 0.008},
    "gpt-4.1-mini": {"prompt_per_1k": 0.0004, "completion_per_1k": 0.0016},
    "gpt-3.5-turbo": {"prompt_per_1k": 0.0005, "completion_per_1k": 0.0015},
}


DEVELOPMENT_SECRETS_KEK = "dev:sous-development-secrets-kek-not-for-production"


def _default_runner_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _workspace_lists(value: str, variable: str) -> dict[str, list[str]]:
    if not value:
        return {}
    raw: Any = json.loads(value)
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise ValueError(f"{variable} must be a JSON object of lists")
    return {str(ws): [str(item) for item in items] for ws, items in raw.items()}


class ExecutorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SOUS_", extra="ignore", populate_by_name=True)

    service_name: str = "executor"
    port: int = Field(default=8002, validation_alias=AliasChoices("SOUS_EXECUTOR_PORT", "SOUS_PORT", "port"))
    database_name: str = "sous_executor"

    model_base_url: str = "http://127.0.0.1:8090/v1"
    model_api_key_default: str = "offline"
    # Comma-separated origins (scheme://host[:port][/path]) agents may point `base_url` at, besides
    # model_base_url's own origin. Matched exactly on scheme, host and port; a path is a prefix.
    allowed_model_origins: str = "https://api.openai.com"
    # Outside development, destinations resolving to loopback, private, link-local or metadata addresses
    # are refused; unset means "enforce unless SOUS_ENV is development or test".
    egress_block_private: bool | None = None
    # Key-encryption keys of workspace secrets: "id:material[,id:material...]"; the first wraps new keys.
    secrets_kek: str = DEVELOPMENT_SECRETS_KEK
    # JSON {workspace_id: [ENV_NAME, ...]}: the only environment variables api_key_env and
    # webhook_secret_env may name, per workspace.
    env_grants: str = ""
    # JSON {workspace_id: [toolkit, ...]}: the Composio toolkits each workspace may use.
    composio_workspace_toolkits: str = ""
    webhook_rate_limit_per_minute: int = Field(default=60, ge=1)
    # An execute request's Idempotency-Key answers its repeats with the same execution for this long.
    idempotency_key_ttl_s: float = Field(default=86_400.0, gt=0)
    # Per-workspace defaults that apply when a recipe sets no budget (0 = no default);
    # JSON {workspace_id: {max_tokens, max_cost_usd, runs_per_day}} overrides them per workspace.
    default_max_tokens: int = Field(default=1_000_000, ge=0)
    default_max_cost_usd: float = Field(default=10.0, ge=0)
    default_runs_per_day: int = Field(default=1000, ge=0)
    workspace_quotas: str = ""
    # Models missing from the price table cost 0; unset means "refuse them in production".
    require_priced_models: bool | None = None
    max_recipe_steps: int = Field(default=500, ge=1)
    max_dependency_edges: int = Field(default=5000, ge=0)
    max_concurrent_executions_per_workspace: int = Field(default=20, ge=1)
    lease_ttl_s: float = Field(default=15.0, gt=0)
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    sweeper_interval_s: float = Field(default=3.0, gt=0)
    scheduler_interval_s: float = Field(default=15.0, gt=0)
    cancel_poll_s: float = Field(default=0.25, gt=0)
    sse_poll_s: float = Field(default=0.2, gt=0)
    retry_jitter: float = Field(default=0.1, ge=0, le=1)
    llm_request_timeout_s: float = Field(default=120.0, gt=0)
    # Open connections to one model endpoint (per base_url and key), all kept alive between calls; unset:
    # twice max_inflight, at least 100, so runs in flight never queue for a connection or reopen one per call.
    llm_max_connections: int | None = Field(default=None, ge=1)
    # JSON: {model: {prompt_per_1k, completion_per_1k}}, merged over the built-in table.
    price_table: str = ""
    catalog_url: str = "http://127.0.0.1:8001"
    # The quality service, asked for a recipe's current score when executions are listed ("" = the copy only).
    quality_url: str = "http://127.0.0.1:8003"
    # Comma-separated origins (scheme://host[:port]) the http_get tool may reach.
    http_tool_allowlist: str = ""
    tool_result_max_chars: int = 4000
    composio_api_key: str = Field(default="", validation_alias=AliasChoices("COMPOSIO_API_KEY", "composio_api_key"))
    runner_id: str = Field(default_factory=_default_runner_id)
    # Runs one instance carries at once; more requests wait (pending, unclaimed) for a free slot.
    max_inflight: int = Field(
        default=50, ge=1, validation_alias=AliasChoices("SOUS_EXECUTOR_MAX_INFLIGHT", "max_inflight")
    )
    # A request unclaimed for this long (every instance was full) is started by a sweeper with room.
    pending_claim_grace_s: float = Field(default=10.0, ge=0)
    # A step started this many times in a row without an outcome fails with error_type crash_loop.
    crash_loop_claims: int = Field(default=3, ge=1)
    # A step output larger than this (encoded bytes) is cut, with a marker, in its StepCompleted.
    event_output_max_bytes: int = Field(default=256 * 1024, ge=1024)
    # Tokens a model call is assumed to answer with when its agent sets no max_tokens (budget reservations).
    budget_completion_estimate: int = Field(default=1024, ge=0)
    # How long a cancel lets in-flight model calls answer (so their usage is recorded) before cutting them.
    cancel_grace_s: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _refuse_default_kek_in_production(self) -> ExecutorSettings:
        if self.env == "production" and DEVELOPMENT_SECRETS_KEK.split(":", 1)[1] in self.secrets_kek:
            raise ValueError("SOUS_SECRETS_KEK must be set to a non-default value in production")
        # Malformed JSON settings fail at start-up rather than on the first request that reads them.
        self.env_grant_map, self.composio_toolkit_map, self.workspace_quota_map  # noqa: B018
        return self

    @model_validator(mode="after")
    def _heartbeat_well_inside_the_lease(self) -> ExecutorSettings:
        # A heartbeat slower than half the lease lets a live runner lose its lease to the sweeper.
        if self.heartbeat_interval_s * 2 > self.lease_ttl_s:
            raise ValueError(
                f"SOUS_HEARTBEAT_INTERVAL_S ({self.heartbeat_interval_s}) must be at most half of "
                f"SOUS_LEASE_TTL_S ({self.lease_ttl_s})"
            )
        return self

    @property
    def allowed_model_origin_list(self) -> list[str]:
        return _csv(self.allowed_model_origins)

    @property
    def block_private_egress(self) -> bool:
        if self.egress_block_private is not None:
            return self.egress_block_private
        return not self.loopback_allowed

    @property
    def priced_models_required(self) -> bool:
        if self.require_priced_models is not None:
            return self.require_priced_models
        return self.env == "production"

    @property
    def env_grant_map(self) -> dict[str, list[str]]:
        return _workspace_lists(self.env_grants, "SOUS_ENV_GRANTS")

    @property
    def composio_toolkit_map(self) -> dict[str, list[str]]:
        return _workspace_lists(self.composio_workspace_toolkits, "SOUS_COMPOSIO_WORKSPACE_TOOLKITS")

    @property
    def workspace_quota_map(self) -> dict[str, dict[str, float]]:
        if not self.workspace_quotas:
            return {}
        raw: Any = json.loads(self.workspace_quotas)
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise ValueError("SOUS_WORKSPACE_QUOTAS must be a JSON object of objects")
        return {str(ws): {str(k): float(v) for k, v in limits.items()} for ws, limits in raw.items()}

    @property
    def llm_connection_limit(self) -> int:
        if self.llm_max_connections is not None:
            return self.llm_max_connections
        return max(100, 2 * self.max_inflight)

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

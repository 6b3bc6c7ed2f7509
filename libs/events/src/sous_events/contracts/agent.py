"""The agent as the catalog publishes it, and as a marketplace listing carries it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sous_events.contracts.base import Snapshot


class ModelConfig(Snapshot):
    provider: str = ""
    model_id: str = ""
    base_url: str | None = None
    # Names of a workspace secret / an executor environment variable, never a key.
    api_key_secret: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


class AgentConfiguration(Snapshot):
    max_iterations: int = 10


class AgentMetricsSnapshot(Snapshot):
    """The quality service's running totals of an agent's step attempts."""

    runs: int = 0
    successes: int = 0
    success_rate: float = 0.0
    mean_duration_ms: float = 0.0
    total_tokens: int = 0
    total_cost_usd: float = 0.0
    total_duration_ms: float | None = None


class AgentDefinition(Snapshot):
    """What an agent is, without where it lives: what a listing carries (minus secrets)."""

    id: str = ""
    name: str = ""
    description: str = ""
    llm_config: ModelConfig = Field(default_factory=ModelConfig, alias="model_config")
    skills: list[str] = Field(default_factory=list)
    configuration: AgentConfiguration = Field(default_factory=AgentConfiguration)
    # Fields an installer binds to secrets of their own (a listing of an agent that used a key).
    bind_secrets: list[str] = Field(default_factory=list)


class AgentSnapshot(AgentDefinition):
    workspace_id: str = ""
    # Stable per workspace; accepted wherever an agent id is (agents registered before numbers have none).
    number: int | None = None
    status: str = "active"
    metrics: AgentMetricsSnapshot = Field(default_factory=AgentMetricsSnapshot)
    created_by: str = ""
    created_at: str = ""
    updated_at: str = ""
    revision: int = 0

    def summary(self) -> dict[str, Any]:
        """What a recipe step shows of its agent."""
        return {
            "id": self.id,
            "name": self.name,
            "model": self.llm_config.model_id,
            "provider": self.llm_config.provider,
            "tool_count": len(self.skills),
            "status": self.status,
        }

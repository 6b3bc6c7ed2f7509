"""Quality service settings, read once at start-up from `SOUS_*` variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from sous_service.config import ServiceSettings


class QualitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SOUS_", extra="ignore", populate_by_name=True)

    service_name: str = "quality"
    database_name: str = "sous_quality"
    port: int = Field(default=8003, validation_alias=AliasChoices("SOUS_QUALITY_PORT", "port"))
    # The consumer group (and inbox name) reading the executor and catalog recipe topics.
    consumer_group: str = "quality"
    # The executor, asked about a run this service's copy does not have finished yet ("" = never ask), and
    # how long a request waits for the run's events once the executor says it finished.
    executor_url: str = "http://127.0.0.1:8002"
    execution_catch_up_s: float = Field(default=10.0, ge=0, le=120)
    # How often the agents' attempts counted since their last AgentMetricsUpdated are published in a new one:
    # a busy agent costs one event per window, and its metrics lag its steps by at most about this long.
    agent_metrics_window_s: float = Field(default=1.0, gt=0, le=60)

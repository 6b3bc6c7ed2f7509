"""Settings every service shares; each service subclasses ServiceSettings and adds its own."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEVELOPMENT_INTERNAL_SECRET = "sous-development-internal-secret-not-for-production"
DEVELOPMENT_JWT_SECRET = "sous-development-jwt-secret-not-for-production"


class ServiceSettings(BaseSettings):
    """Read once at start-up from `SOUS_*` variables."""

    model_config = SettingsConfigDict(env_prefix="SOUS_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    service_name: str = "sous"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # Prometheus metrics (GET /metrics) on a port of their own, never on the API port; unset: not served.
    metrics_port: int | None = None
    metrics_host: str = ""  # defaults to `host`

    # A server-level URL: each service keeps its own database on that server (database_name).
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    database_name: str = ""
    database_pool_size: int = 10

    # How long an outbox row the broker acknowledged stays as a delivery log; 0 deletes it at once (the event
    # store keeps the record), which spares every event a second row version and a later trim.
    outbox_keep_sent_s: float = Field(default=0.0, ge=0)
    # How long the relay waits for more commits before a pass (none while it works through a backlog): a
    # run's step boundaries then reach the broker in one produce request, not one each. Live streams and
    # a run's own progress never wait for it; the event consumers see an event this much later.
    outbox_linger_ms: float = Field(default=25.0, ge=0, le=1000)

    kafka_bootstrap: str = "127.0.0.1:9092"
    # The embedded broker has no idempotent producer; Apache Kafka in production should enable it.
    kafka_idempotence: bool = False
    kafka_acks: Literal["all", "1", "0"] = "all"
    kafka_send_timeout_s: float = 10.0
    kafka_partitions: int = 6
    kafka_session_timeout_ms: int = Field(default=10_000, ge=3_000, le=300_000)
    kafka_fetch_min_bytes: int = Field(default=64 * 1024, ge=1, le=50 * 1024 * 1024)
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=1, le=5_000)
    kafka_replication: int = 1
    consumer_max_attempts: int = 5
    consumer_backoff_s: float = 0.2

    internal_secret: str = DEVELOPMENT_INTERNAL_SECRET
    internal_context_max_age_s: int = 30

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> ServiceSettings:
        if self.env == "production" and self.internal_secret == DEVELOPMENT_INTERNAL_SECRET:
            raise ValueError("SOUS_INTERNAL_SECRET must be set to a non-default value in production")
        if self.env == "production" and len(self.internal_secret) < 32:
            raise ValueError("SOUS_INTERNAL_SECRET must be at least 32 characters in production")
        return self

    @property
    def service_database_url(self) -> str:
        """The URL of this service's own database on the configured server."""
        url = make_url(self.database_url)
        if self.database_name:
            url = url.set(database=self.database_name)
        return url.render_as_string(hide_password=False)

    @property
    def admin_database_url(self) -> str:
        """The maintenance database on the same server, used to create the service's database."""
        return make_url(self.database_url).set(database="postgres").render_as_string(hide_password=False)

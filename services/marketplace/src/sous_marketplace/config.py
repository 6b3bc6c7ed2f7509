"""Marketplace settings: `SOUS_*` variables shared by every service, plus the marketplace's own."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from sous_service.config import ServiceSettings


class MarketplaceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SOUS_", extra="ignore", populate_by_name=True)

    service_name: str = "marketplace"
    port: int = Field(default=8004, validation_alias=AliasChoices("SOUS_MARKETPLACE_PORT", "SOUS_PORT"))
    database_name: str = Field(
        default="sous_marketplace", validation_alias=AliasChoices("SOUS_MARKETPLACE_DATABASE_NAME")
    )
    # A creator with at least this many approved listings publishes without moderation.
    trusted_creator_threshold: int = Field(default=5, ge=1)
    # The catalog, asked for a recipe or agent its events have not brought yet ("" = never ask).
    catalog_url: str = "http://127.0.0.1:8001"
    # The consumer group of the replicas (catalog recipes and agents, quality scores).
    consumer_group: str = Field(default="marketplace", validation_alias=AliasChoices("SOUS_MARKETPLACE_CONSUMER_GROUP"))
    # The quality gate (docs/marketplace.md): approval needs the source recipe's rolling quality score to be at
    # least gate_min_score over at least gate_min_runs assessed runs; an approved listing whose rolling score
    # falls below gate_min_score is flagged and leaves "featured". gate_min_runs = 0 admits unassessed recipes.
    gate_min_score: float = Field(
        default=0.6, ge=0.0, le=1.0, validation_alias=AliasChoices("SOUS_MARKETPLACE_GATE_MIN_SCORE")
    )
    gate_min_runs: int = Field(default=3, ge=0, validation_alias=AliasChoices("SOUS_MARKETPLACE_GATE_MIN_RUNS"))
    # How many of the latest rolling scores a listing shows as its score trend.
    score_trend_points: int = Field(
        default=10, ge=0, le=100, validation_alias=AliasChoices("SOUS_MARKETPLACE_SCORE_TREND_POINTS")
    )
    # The quality service, read when the replica of a recipe's quality would refuse an approval (it may lag).
    quality_url: str = "http://127.0.0.1:8003"

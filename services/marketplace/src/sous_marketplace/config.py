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
    # The consumer group of the replicas (catalog recipes and agents, quality scores).
    consumer_group: str = Field(default="marketplace", validation_alias=AliasChoices("SOUS_MARKETPLACE_CONSUMER_GROUP"))

"""Catalog settings: the shared service settings plus the catalog's port and database."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from sous_catalog.domain.rules import RecipeRules, parse_env_grants
from sous_service.config import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"
    port: int = Field(default=8001, validation_alias=AliasChoices("SOUS_CATALOG_PORT", "port"))
    database_name: str = "sous_catalog"
    # How often a write runs again when a concurrent writer appended first (the unit of work's attempts).
    update_retries: int = 3
    # The consumer group of the catalog's consumers (tests give each app its own).
    consumer_group: str = "catalog"
    # JSON {workspace_id: [ENV_NAME, ...]}: the environment names api_key_env / webhook_secret_env may use.
    env_grants: str = ""
    # Cron schedules may not run more often than this (seconds between runs).
    min_cron_interval_s: int = Field(default=300, ge=0)
    max_recipe_steps: int = Field(default=500, ge=1)
    max_dependency_edges: int = Field(default=5000, ge=0)

    def rules(self) -> RecipeRules:
        return RecipeRules(
            env_grants=parse_env_grants(self.env_grants),
            min_cron_interval_s=self.min_cron_interval_s,
            max_steps=self.max_recipe_steps,
            max_dependency_edges=self.max_dependency_edges,
        )

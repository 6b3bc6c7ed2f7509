"""Catalog settings: the shared service settings plus the catalog's port and database."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from sous_catalog.domain.promotion import PromotionPolicy
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
    # Promotion of a proposed version (docs/marketplace.md): replay the last K finished executions with it
    # (SOUS_PROMOTION_EXECUTIONS); promote when their mean quality is not lower than the recorded runs' by
    # more than the tolerance and their mean cost stays under ratio x the recorded cost (and the amount per
    # run, when set). A promote request waits this long for the replays before answering 202.
    promotion_executions: int = Field(default=5, ge=1, le=50)
    promotion_quality_tolerance: float = Field(default=0.0, ge=0.0, le=1.0)
    promotion_cost_ceiling_ratio: float = Field(default=1.2, gt=0.0)
    promotion_max_cost_usd: float | None = Field(default=None, ge=0.0)
    promotion_wait_s: float = Field(default=20.0, gt=0.0, le=55.0)
    # Where promotions start replays (the executor) and read scores the replays lack (quality).
    executor_url: str = "http://127.0.0.1:8002"
    quality_url: str = "http://127.0.0.1:8003"

    def rules(self) -> RecipeRules:
        return RecipeRules(
            env_grants=parse_env_grants(self.env_grants),
            min_cron_interval_s=self.min_cron_interval_s,
            max_steps=self.max_recipe_steps,
            max_dependency_edges=self.max_dependency_edges,
        )

    def promotion_policy(self) -> PromotionPolicy:
        return PromotionPolicy(
            executions=self.promotion_executions,
            quality_tolerance=self.promotion_quality_tolerance,
            cost_ceiling_ratio=self.promotion_cost_ceiling_ratio,
            max_cost_usd=self.promotion_max_cost_usd,
        )

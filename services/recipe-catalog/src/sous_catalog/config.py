"""Catalog settings: the shared service settings plus the catalog's port and database."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from sous_service.config import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"
    port: int = Field(default=8001, validation_alias=AliasChoices("SOUS_CATALOG_PORT", "port"))
    database_name: str = "sous_catalog"
    # How often a PUT without If-Match is retried when a concurrent writer appended first.
    update_retries: int = 3
    # The consumer group of the catalog's consumers (tests give each app its own).
    consumer_group: str = "catalog"

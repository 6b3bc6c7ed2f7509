"""The catalog's HTTP entry points: agent and recipe routes (each translates a request into a command)."""

from __future__ import annotations

from sous_catalog.entrypoints.agents_api import agents_router
from sous_catalog.entrypoints.recipes_api import recipes_router
from sous_catalog.entrypoints.versions_api import versions_router

ROUTERS = (agents_router, recipes_router, versions_router)

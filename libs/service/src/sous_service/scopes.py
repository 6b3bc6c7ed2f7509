"""Scope names shared by the gateway (which grants them) and the services (which re-check them)."""

from __future__ import annotations

RECIPES_READ = "recipes:read"
RECIPES_WRITE = "recipes:write"
EXECUTIONS_RUN = "executions:run"
EXECUTIONS_READ = "executions:read"
QUALITY_WRITE = "quality:write"
MARKETPLACE_SUBMIT = "marketplace:submit"
MARKETPLACE_MODERATE = "marketplace:moderate"
KEYS_ADMIN = "keys:admin"

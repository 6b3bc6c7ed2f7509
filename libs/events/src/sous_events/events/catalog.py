"""Catalog events: recipes and agents. Payloads carry full snapshots (event-carried state transfer)."""

from __future__ import annotations

from typing import Any

from sous_events.envelope import EventPayload


class RecipeCreated(EventPayload):
    recipe: dict[str, Any]


class RecipeUpdated(EventPayload):
    recipe: dict[str, Any]
    changed_fields: list[str]


class RecipeDeleted(EventPayload):
    recipe_id: str
    template_id: str = ""


class AgentRegistered(EventPayload):
    agent: dict[str, Any]


class AgentUpdated(EventPayload):
    agent: dict[str, Any]
    changed_fields: list[str] = []


class AgentRemoved(EventPayload):
    agent_id: str

"""Marketplace events: listings and installs."""

from __future__ import annotations

from typing import Any

from sous_events.envelope import EventPayload


class ListingSubmitted(EventPayload):
    listing_id: str
    name: str
    category: str
    creator_id: str
    source_workspace_id: str
    recipe_id: str
    auto_approved: bool = False
    icon: str | None = None
    recipe: dict[str, Any] = {}
    agents: list[dict[str, Any]] = []


class ListingApproved(EventPayload):
    listing_id: str
    moderator_id: str = ""
    creator_id: str = ""


class ListingRejected(EventPayload):
    listing_id: str
    reason: str
    moderator_id: str = ""
    creator_id: str = ""


class RecipeInstalled(EventPayload):
    install_id: str
    listing_id: str
    target_workspace_id: str
    recipe: dict[str, Any]
    agents: list[dict[str, Any]] = []
    installed_by: str = ""

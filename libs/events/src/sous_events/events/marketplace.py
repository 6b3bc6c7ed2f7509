"""Marketplace events: listings and installs."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from sous_events.contracts import AgentDefinition, RecipeDefinition
from sous_events.envelope import EventPayload


class ListingSubmitted(EventPayload):
    """v2: `template_id` (v1: `recipe_id`), the listed recipe's template id in its source workspace."""

    listing_id: str
    name: str
    category: str
    creator_id: str
    source_workspace_id: str
    template_id: str
    auto_approved: bool = False
    icon: str | None = None
    # The recipe and its agents as the listing carries them (nothing private to the source workspace).
    recipe: RecipeDefinition | None = None
    agents: list[AgentDefinition] = []

    @field_validator("recipe", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # Listings submitted before listings carried their recipe hold `{}`.
        return value or None


class ListingApproved(EventPayload):
    listing_id: str
    moderator_id: str = ""
    creator_id: str = ""


class ListingRejected(EventPayload):
    listing_id: str
    reason: str
    moderator_id: str = ""
    creator_id: str = ""


class ListingFlagged(EventPayload):
    """An approved listing whose source recipe's rolling quality score fell below the approval gate."""

    listing_id: str
    creator_id: str = ""
    rolling_score: float
    assessed_runs: int
    min_score: float
    min_runs: int
    reason: str
    execution_id: str = ""


class ListingFlagCleared(EventPayload):
    """A flagged listing whose rolling quality score met the approval gate again."""

    listing_id: str
    creator_id: str = ""
    rolling_score: float
    assessed_runs: int
    execution_id: str = ""


class ListingWithdrawn(EventPayload):
    """A pending or approved listing taken off the marketplace by its creator or a moderator."""

    listing_id: str
    withdrawn_by: str
    creator_id: str = ""


class RecipeInstalled(EventPayload):
    install_id: str
    listing_id: str
    target_workspace_id: str
    recipe: RecipeDefinition
    agents: list[AgentDefinition] = []
    installed_by: str = ""

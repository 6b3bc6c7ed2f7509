"""The catalog's commands: what a caller asks of it, one handler each (sous_catalog.handlers).

Recipe and agent bodies travel as the JSON of their validated request schema (RecipeCreate, AgentCreate,
...): the handlers apply the rules that span fields on that plain data and report every violation with
its field path.
"""

from __future__ import annotations

from typing import Any

from sous_events.events import RecipeInstalled
from sous_service.commands import Command


class RegisterAgent(Command):
    agent: dict[str, Any]


class UpdateAgent(Command):
    agent_id: str  # or the agent's number in the workspace
    changes: dict[str, Any]


class RemoveAgent(Command):
    agent_id: str  # or the agent's number in the workspace


class CreateRecipe(Command):
    recipe: dict[str, Any]
    # The listing a marketplace install cloned it from: {listing_id, template_id}.
    cloned_from: dict[str, Any] | None = None


class UpdateRecipe(Command):
    template_id: str
    changes: dict[str, Any]
    # The revision the caller last read (If-Match); a recipe that moved on since is refused.
    if_match: int | None = None


class ProposeRecipeVersion(Command):
    """Record changes as a new version of the recipe that is not current until promoted."""

    template_id: str
    changes: dict[str, Any]


class PromoteRecipeVersion(Command):
    """Make a proposed version current if its what-if replays are not worse (docs/marketplace.md)."""

    template_id: str
    revision: int


class DeleteRecipe(Command):
    template_id: str


class RecordRecipeUse(Command):
    template_id: str


class InstallRecipe(Command):
    """Clone a marketplace listing into the workspace the install names (from RecipeInstalled)."""

    installed: RecipeInstalled

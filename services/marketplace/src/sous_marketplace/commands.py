"""The marketplace's commands, one handler each (sous_marketplace.handlers)."""

from __future__ import annotations

from sous_service.commands import Command


class SubmitListing(Command):
    """List a recipe of the caller's workspace (by template id) in the marketplace."""

    recipe_id: str
    category: str | None = None
    icon: str | None = None


class ApproveListing(Command):
    listing_id: str


class RejectListing(Command):
    listing_id: str
    reason: str


class WithdrawListing(Command):
    """Take a pending or approved listing off the marketplace (its creator, or a moderator)."""

    listing_id: str
    by_moderator: bool = False


class InstallListing(Command):
    """Clone an approved listing into the caller's workspace (the catalog does it on RecipeInstalled)."""

    listing_id: str


class FollowRecipeQuality(Command):
    """Flag (or clear) the approved listings of a recipe after its rolling quality score moved."""

    template_id: str
    execution_id: str
    # The recipe's approved listings when the caller has just read them (the consumer's statement does).
    listing_ids: list[str] | None = None

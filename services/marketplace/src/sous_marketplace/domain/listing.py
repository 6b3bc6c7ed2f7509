"""The Listing aggregate: a shared recipe going through moderation, rebuilt from its own events.

Status: pending -> approved | rejected. Approving or rejecting is only possible from pending; anything
else is an invalid transition (409). A trusted creator's submission starts approved (auto_approved).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sous_events.envelope import Envelope
from sous_events.events import ListingApproved, ListingRejected, ListingSubmitted

Status = Literal["pending", "approved", "rejected"]

DEFAULT_CATEGORY = "General"
MAX_CATEGORY_LENGTH = 100


class InvalidTransition(Exception):
    """The listing is not in a state that allows this command."""

    def __init__(self, listing_id: str, status: str, action: str) -> None:
        super().__init__(f"listing '{listing_id}' is {status}: it cannot be {action}")
        self.listing_id = listing_id
        self.status = status
        self.action = action


class InvalidReason(ValueError):
    """A rejection needs a non-empty reason."""


def choose_category(given: str | None, tags: Iterable[Any]) -> str:
    """The given category, else the recipe's first non-empty tag, else "General"."""
    if given is not None and given.strip():
        return given.strip()[:MAX_CATEGORY_LENGTH]
    for tag in tags:
        if isinstance(tag, str) and tag.strip():
            return tag.strip()[:MAX_CATEGORY_LENGTH]
    return DEFAULT_CATEGORY


@dataclass
class Listing:
    listing_id: str
    version: int = 0
    status: Status = "pending"
    name: str = ""
    category: str = DEFAULT_CATEGORY
    creator_id: str = ""
    source_workspace_id: str = ""
    recipe_id: str = ""
    auto_approved: bool = False
    icon: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    agents: list[dict[str, Any]] = field(default_factory=list)
    rejection_reason: str | None = None
    moderator_id: str | None = None

    @classmethod
    def from_events(cls, listing_id: str, events: Iterable[Envelope]) -> Listing:
        listing = cls(listing_id=listing_id)
        for event in events:
            listing.apply(event)
        return listing

    @property
    def exists(self) -> bool:
        return self.version > 0

    def apply(self, event: Envelope) -> None:
        payload = event.typed()
        if isinstance(payload, ListingSubmitted):
            self.name = payload.name
            self.category = payload.category
            self.creator_id = payload.creator_id
            self.source_workspace_id = payload.source_workspace_id
            self.recipe_id = payload.recipe_id
            self.auto_approved = payload.auto_approved
            self.icon = payload.icon
            self.recipe = dict(payload.recipe)
            self.agents = list(payload.agents)
            self.status = "approved" if payload.auto_approved else "pending"
        elif isinstance(payload, ListingApproved):
            self.status = "approved"
            self.moderator_id = payload.moderator_id
        elif isinstance(payload, ListingRejected):
            self.status = "rejected"
            self.rejection_reason = payload.reason
            self.moderator_id = payload.moderator_id
        self.version = event.aggregate_version

    def approve(self, moderator_id: str) -> ListingApproved:
        if self.status != "pending":
            raise InvalidTransition(self.listing_id, self.status, "approved")
        return ListingApproved(listing_id=self.listing_id, moderator_id=moderator_id, creator_id=self.creator_id)

    def reject(self, moderator_id: str, reason: str) -> ListingRejected:
        if not reason.strip():
            raise InvalidReason("a rejection needs a reason")
        if self.status != "pending":
            raise InvalidTransition(self.listing_id, self.status, "rejected")
        return ListingRejected(
            listing_id=self.listing_id, reason=reason.strip(), moderator_id=moderator_id, creator_id=self.creator_id
        )

"""The Listing aggregate: a shared recipe going through moderation, rebuilt from its own events.

Status: pending -> approved | rejected. Approving or rejecting is only possible from pending; anything
else is an invalid transition (409). Approval also needs the quality gate (domain/quality_gate.py). A
trusted creator's submission starts approved (auto_approved) when the gate holds. An approved listing is
featured until its quality falls below the gate: then it is flagged, until the gate holds again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sous_events.envelope import Envelope
from sous_events.events import (
    ListingApproved,
    ListingFlagCleared,
    ListingFlagged,
    ListingRejected,
    ListingSubmitted,
    ListingWithdrawn,
)
from sous_events.registry import payload_of
from sous_marketplace.domain.quality_gate import GateVerdict, QualityGate, QualityStanding

Status = Literal["pending", "approved", "rejected", "withdrawn"]

DEFAULT_CATEGORY = "General"
MAX_CATEGORY_LENGTH = 100


class InvalidTransition(Exception):
    """The listing is not in a state that allows this command."""

    def __init__(self, listing_id: str, status: str, action: str) -> None:
        super().__init__(f"listing '{listing_id}' is {status}: it cannot be {action}")
        self.listing_id = listing_id
        self.status = status
        self.action = action


class QualityGateNotMet(Exception):
    """The listing's recipe does not meet the quality gate: it cannot be approved."""

    def __init__(self, listing_id: str, reason: str, gate: QualityGate, standing: QualityStanding) -> None:
        super().__init__(f"listing '{listing_id}' cannot be approved: {reason}")
        self.listing_id = listing_id
        self.reason = reason
        self.gate = gate
        self.standing = standing


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
    flagged: bool = False

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
        payload = payload_of(event)
        if isinstance(payload, ListingSubmitted):
            self.name = payload.name
            self.category = payload.category
            self.creator_id = payload.creator_id
            self.source_workspace_id = payload.source_workspace_id
            self.recipe_id = payload.template_id
            self.auto_approved = payload.auto_approved
            self.icon = payload.icon
            self.recipe = payload.recipe.as_dict() if payload.recipe is not None else {}
            self.agents = [agent.as_dict() for agent in payload.agents]
            self.status = "approved" if payload.auto_approved else "pending"
        elif isinstance(payload, ListingApproved):
            self.status = "approved"
            self.moderator_id = payload.moderator_id
        elif isinstance(payload, ListingFlagged):
            self.flagged = True
        elif isinstance(payload, ListingFlagCleared):
            self.flagged = False
        elif isinstance(payload, ListingRejected):
            self.status = "rejected"
            self.rejection_reason = payload.reason
            self.moderator_id = payload.moderator_id
        elif isinstance(payload, ListingWithdrawn):
            self.status = "withdrawn"
        self.version = event.aggregate_version

    def withdraw(self, by: str) -> ListingWithdrawn:
        """Off the marketplace for good (installed copies stay); its name is free again."""
        if self.status not in ("pending", "approved"):
            raise InvalidTransition(self.listing_id, self.status, "withdrawn")
        return ListingWithdrawn(listing_id=self.listing_id, withdrawn_by=by, creator_id=self.creator_id)

    def approve(self, moderator_id: str, gate: QualityGate, standing: QualityStanding) -> ListingApproved:
        if self.status != "pending":
            raise InvalidTransition(self.listing_id, self.status, "approved")
        verdict: GateVerdict = gate.verdict(standing)
        if not verdict.met:
            raise QualityGateNotMet(self.listing_id, verdict.reason or "quality gate not met", gate, standing)
        return ListingApproved(listing_id=self.listing_id, moderator_id=moderator_id, creator_id=self.creator_id)

    def reject(self, moderator_id: str, reason: str) -> ListingRejected:
        if not reason.strip():
            raise InvalidReason("a rejection needs a reason")
        if self.status != "pending":
            raise InvalidTransition(self.listing_id, self.status, "rejected")
        return ListingRejected(
            listing_id=self.listing_id, reason=reason.strip(), moderator_id=moderator_id, creator_id=self.creator_id
        )

    def follow_quality(
        self, gate: QualityGate, standing: QualityStanding, execution_id: str = ""
    ) -> ListingFlagged | ListingFlagCleared | None:
        """Flag an approved listing whose rolling score fell below the gate; clear the flag once it holds again."""
        if self.status != "approved":
            return None
        if not self.flagged and gate.falls_below(standing):
            return ListingFlagged(
                listing_id=self.listing_id,
                creator_id=self.creator_id,
                rolling_score=standing.score or 0.0,
                assessed_runs=standing.assessed_runs,
                min_score=gate.min_score,
                min_runs=gate.min_runs,
                reason=gate.below_reason(standing),
                execution_id=execution_id,
            )
        if self.flagged and gate.verdict(standing).met:
            return ListingFlagCleared(
                listing_id=self.listing_id,
                creator_id=self.creator_id,
                rolling_score=standing.score or 0.0,
                assessed_runs=standing.assessed_runs,
                execution_id=execution_id,
            )
        return None

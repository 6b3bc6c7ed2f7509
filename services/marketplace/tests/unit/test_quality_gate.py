"""The quality gate on approval, and flagging when a listing's rolling score falls below it later."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sous_events.envelope import EventPayload
from sous_events.events import ListingFlagCleared, ListingFlagged, ListingSubmitted
from sous_events.registry import make_event
from sous_marketplace.adapters import queries, replicas
from sous_marketplace.commands import FollowRecipeQuality
from sous_marketplace.domain.listing import Listing, QualityGateNotMet
from sous_marketplace.domain.quality_gate import QualityGate, QualityStanding
from sous_marketplace.handlers import MarketplaceHandlers

pytestmark = pytest.mark.unit

GATE = QualityGate(min_score=0.7, min_runs=3)


def listing() -> Listing:
    payload = ListingSubmitted(
        listing_id="L1", name="Digest", category="News", creator_id="u1", source_workspace_id="wa", template_id="d"
    )
    return Listing.from_events(
        "L1", [make_event(payload, producer="t", workspace_id="wa", aggregate_id="L1", aggregate_version=1)]
    )


def advance(item: Listing, payload: EventPayload) -> None:
    item.apply(
        make_event(payload, producer="t", workspace_id="wa", aggregate_id="L1", aggregate_version=item.version + 1)
    )


def test_too_few_assessed_runs_refuse_approval_with_the_reason() -> None:
    with pytest.raises(QualityGateNotMet) as refused:
        listing().approve("mod", GATE, QualityStanding(score=0.95, assessed_runs=2, trend=(0.9, 0.95)))
    assert refused.value.reason == "the recipe has 2 assessed run(s); approval needs at least 3"


def test_a_rolling_score_below_the_minimum_refuses_approval_with_the_reason() -> None:
    with pytest.raises(QualityGateNotMet) as refused:
        listing().approve("mod", GATE, QualityStanding(score=0.5, assessed_runs=4))
    assert refused.value.reason == (
        "the recipe's rolling quality score 0.50 over 4 assessed run(s) is below the minimum 0.70"
    )


def test_the_gate_met_exactly_approves() -> None:
    approved = listing().approve("mod", GATE, QualityStanding(score=0.7, assessed_runs=3))
    assert approved.moderator_id == "mod"


def test_no_runs_asked_admits_an_unassessed_recipe_but_not_a_poor_one() -> None:
    lenient = QualityGate(min_score=0.7, min_runs=0)
    assert lenient.verdict(QualityStanding()).met
    assert not lenient.verdict(QualityStanding(score=0.2, assessed_runs=1)).met


def test_an_approved_listing_is_flagged_once_when_it_falls_below_and_cleared_when_it_recovers() -> None:
    item = listing()
    advance(item, item.approve("mod", GATE, QualityStanding(score=0.9, assessed_runs=3)))
    assert item.follow_quality(GATE, QualityStanding(score=0.75, assessed_runs=4)) is None
    flag = item.follow_quality(GATE, QualityStanding(score=0.65, assessed_runs=5), "e5")
    assert isinstance(flag, ListingFlagged)
    assert (flag.rolling_score, flag.assessed_runs, flag.min_score, flag.execution_id) == (0.65, 5, 0.7, "e5")
    advance(item, flag)
    assert item.flagged
    assert item.follow_quality(GATE, QualityStanding(score=0.6, assessed_runs=6)) is None  # already flagged
    cleared = item.follow_quality(GATE, QualityStanding(score=0.72, assessed_runs=7))
    assert isinstance(cleared, ListingFlagCleared)
    advance(item, cleared)
    assert not item.flagged


def test_a_pending_listing_is_not_flagged() -> None:
    assert listing().follow_quality(GATE, QualityStanding(score=0.1, assessed_runs=9)) is None


def test_the_fresher_standing_is_the_one_with_more_assessments() -> None:
    replica = QualityStanding(score=0.5, assessed_runs=2)
    live = QualityStanding(score=0.8, assessed_runs=3)
    assert replica.fresher(live) is live and live.fresher(replica) is live


async def test_a_recipe_without_approved_listings_is_not_weighed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every assessed run moves its recipe's score; only a listed recipe needs its standing, a query over all
    its assessed runs."""
    weighed: list[str] = []

    async def no_listings(session: object, workspace_id: str, template_id: str) -> list[str]:
        return []

    async def standing(session: object, workspace_id: str, template_id: str, trend_points: int) -> QualityStanding:
        weighed.append(template_id)
        return QualityStanding(score=0.1, assessed_runs=5, trend=())

    monkeypatch.setattr(queries, "approved_listing_ids", no_listings)
    monkeypatch.setattr(replicas, "quality_standing", standing)
    handlers = MarketplaceHandlers(trusted_threshold=3, gate=GATE)
    uow = SimpleNamespace(session=None, caller=SimpleNamespace(workspace_id="wa"))
    await handlers.follow_quality(FollowRecipeQuality(template_id="d", execution_id="e1"), uow)  # type: ignore[arg-type]
    assert weighed == []

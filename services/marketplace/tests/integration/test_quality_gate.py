"""The quality gate on approval, flagging when a listing's rolling score falls below it, read-your-writes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sous_events.envelope import Envelope
from sous_events.events import QualityAssessed
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_local.testing import statements_sent, unique
from sous_marketplace.adapters.quality_client import QualityClient
from sous_marketplace.adapters.tables import quality_assessments
from sous_marketplace.domain.quality_gate import QualityGate
from sous_service.internal_context import CONTEXT_HEADER, decode_context

from .conftest import Marketplace, consume_marketplace_events, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class Recipe:
    """A recipe of a workspace whose assessments the test publishes as the quality service would."""

    def __init__(self, m: Marketplace, workspace: str, template: str) -> None:
        self.m, self.workspace, self.template = m, workspace, template
        self.version = 0

    async def assessed(self, *rolling_scores: float) -> list[Envelope]:
        events = []
        for score in rolling_scores:
            self.version += 1
            payload = QualityAssessed(
                template_id=self.template,
                execution_id=new_id(),
                quality_score=score,
                rolling_score=score,
                breakdown={},
                grade="C",
            )
            events.append(
                make_event(
                    payload,
                    producer="quality",
                    workspace_id=self.workspace,
                    aggregate_id=f"{self.workspace}:{self.template}",
                    aggregate_version=self.version,
                )
            )
        await self.m.publish(*events)
        expected = self.version

        async def replicated() -> bool:
            runs = await self.m.count(
                quality_assessments,
                quality_assessments.c.workspace_id == self.workspace,
                quality_assessments.c.template_id == self.template,
            )
            return runs == expected

        await wait_for(replicated, what=f"{expected} assessments of {self.template}")
        return events


async def submitted(m: Marketplace) -> tuple[Recipe, str]:
    workspace, template = unique("ws"), unique("digest")
    await m.seed_recipe(workspace, template)
    response = await m.client.post(
        "/api/workflow-recipes/submit", json={"recipe_id": template}, headers=m.headers(workspace, unique("alice"))
    )
    assert response.status_code == 200, response.text
    return Recipe(m, workspace, template), response.json()["item_id"]


async def approve(m: Marketplace, listing_id: str) -> httpx.Response:
    return await m.client.post(f"/api/marketplace/listings/{listing_id}/approve", headers=m.moderator())


async def listing(m: Marketplace, listing_id: str) -> dict[str, Any]:
    response = await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=m.moderator())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_approval_is_refused_below_the_gate_with_the_reason_then_granted_once_it_holds(
    gated_marketplace: Marketplace,
) -> None:
    m = gated_marketplace
    recipe, listing_id = await submitted(m)

    unassessed = await approve(m, listing_id)
    assert unassessed.status_code == 409, unassessed.text
    body = unassessed.json()
    assert body["code"] == "quality_gate_not_met"
    assert body["reason"] == "the recipe has 0 assessed run(s); approval needs at least 3"
    assert body["quality"] == {
        "score": None,
        "assessed_runs": 0,
        "score_trend": [],
        "min_score": 0.7,
        "min_runs": 3,
    }

    await recipe.assessed(0.9, 0.62, 0.55)
    poor = await approve(m, listing_id)
    assert poor.status_code == 409 and poor.json()["code"] == "quality_gate_not_met"
    assert poor.json()["reason"] == (
        "the recipe's rolling quality score 0.55 over 3 assessed run(s) is below the minimum 0.70"
    )
    assert poor.json()["quality"]["score_trend"] == [0.9, 0.62, 0.55]
    shown = await listing(m, listing_id)
    assert (shown["status"], shown["featured"], shown["assessed_runs"]) == ("pending", False, 3)
    assert shown["quality_gate"]["met"] is False and shown["quality_gate"]["reason"] == poor.json()["reason"]

    await recipe.assessed(0.74)
    granted = await approve(m, listing_id)
    assert granted.status_code == 200, granted.text
    shown = await listing(m, listing_id)
    assert (shown["status"], shown["featured"], shown["flagged"]) == ("approved", True, False)
    assert shown["quality_score"] == pytest.approx(0.74)
    assert (shown["assessed_runs"], shown["score_trend"]) == (4, [0.9, 0.62, 0.55, 0.74])
    assert shown["quality_gate"] == {"min_score": 0.7, "min_runs": 3, "met": True, "reason": None}


async def test_a_listing_that_falls_below_the_gate_is_flagged_leaves_featured_and_returns_when_it_recovers(
    gated_marketplace: Marketplace, infra: Any
) -> None:
    m = gated_marketplace
    recipe, listing_id = await submitted(m)
    await recipe.assessed(0.9, 0.88, 0.86)
    assert (await approve(m, listing_id)).status_code == 200
    visitor = m.headers(unique("ws"), unique("bob"))
    featured = await m.client.get("/api/marketplace/listings", params={"featured": "true"}, headers=visitor)
    assert listing_id in [item["id"] for item in featured.json()["items"]]

    await recipe.assessed(0.75)
    assert (await listing(m, listing_id))["flagged"] is False  # lower, still above the gate
    [falling] = await recipe.assessed(0.64)

    async def flagged() -> bool:
        return bool((await listing(m, listing_id))["flagged"])

    await wait_for(flagged, what="the listing to be flagged")
    shown = await listing(m, listing_id)
    assert (shown["status"], shown["featured"]) == ("approved", False)
    assert shown["flag_reason"] == (
        "the recipe's rolling quality score 0.64 over 5 assessed run(s) is below the minimum 0.70"
    )
    queue = (await m.client.get("/api/marketplace/queue", params={"kind": "flagged"}, headers=m.moderator())).json()
    assert [item["id"] for item in queue["items"]] == [listing_id]
    assert queue["items"][0]["score_trend"][-2:] == [0.75, 0.64]
    featured = await m.client.get("/api/marketplace/listings", params={"featured": "true"}, headers=visitor)
    assert listing_id not in [item["id"] for item in featured.json()["items"]]
    [event] = await consume_marketplace_events(
        infra.kafka_bootstrap,
        lambda e: e.event_type == "ListingFlagged" and e.aggregate_id == listing_id,
        expected=1,
    )
    payload = event.payload
    assert (payload["rolling_score"], payload["assessed_runs"], payload["min_score"]) == (0.64, 5, 0.7)
    assert event.causation_id == falling.event_id

    # A redelivered assessment flags nothing twice; a lower one keeps the single flag.
    await m.publish(falling)
    await recipe.assessed(0.6)
    await recipe.assessed(0.8)

    async def cleared() -> bool:
        return not (await listing(m, listing_id))["flagged"]

    await wait_for(cleared, what="the flag to clear")
    assert (await listing(m, listing_id))["featured"] is True
    events = await consume_marketplace_events(
        infra.kafka_bootstrap,
        lambda e: e.aggregate_id == listing_id and e.event_type in ("ListingFlagged", "ListingFlagCleared"),
        expected=2,
    )
    assert [e.event_type for e in events] == ["ListingFlagged", "ListingFlagCleared"]


async def test_an_approval_right_after_an_assessment_reads_quality_when_the_replica_lags(
    gated_marketplace: Marketplace,
) -> None:
    m = gated_marketplace
    recipe, listing_id = await submitted(m)
    await recipe.assessed(0.9)
    seen: list[tuple[str, str]] = []
    quality = FastAPI()

    @quality.get("/api/workflow-recipes/{template_id}/quality/history")
    async def history(template_id: str, request: Request) -> JSONResponse:
        caller = decode_context(request.headers[CONTEXT_HEADER], m.settings.internal_secret)
        seen.append((caller.workspace_id, template_id))
        points = [{"rolling_score": s, "execution_id": new_id()} for s in (0.9, 0.85, 0.83)]
        return JSONResponse({"recipe_id": template_id, "quality_score": 0.83, "assessment_count": 3, "points": points})

    services = m.app.state.marketplace
    services.handlers = replace(
        services.handlers,
        quality=QualityClient("http://quality", m.settings.internal_secret, transport=httpx.ASGITransport(app=quality)),
    )
    granted = await approve(m, listing_id)
    assert granted.status_code == 200, granted.text
    assert seen == [(recipe.workspace, recipe.template)]


async def test_a_gate_open_to_unassessed_recipes_asks_quality_before_approving_one_its_replica_has_not_seen(
    marketplace: Marketplace,
) -> None:
    m = marketplace
    _, listing_id = await submitted(m)
    quality = FastAPI()

    @quality.get("/api/workflow-recipes/{template_id}/quality/history")
    async def history(template_id: str) -> JSONResponse:
        points = [{"rolling_score": 0.4, "execution_id": new_id()}]
        return JSONResponse({"recipe_id": template_id, "quality_score": 0.4, "assessment_count": 1, "points": points})

    services = m.app.state.marketplace
    services.handlers = replace(
        services.handlers,
        gate=QualityGate(min_score=0.85, min_runs=0),
        quality=QualityClient("http://quality", m.settings.internal_secret, transport=httpx.ASGITransport(app=quality)),
    )
    refused = await approve(m, listing_id)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "quality_gate_not_met"


async def test_an_assessment_of_a_recipe_without_listings_is_one_statement(marketplace: Marketplace) -> None:
    """Every assessed run reaches the marketplace: its score, the run and the recipe's approved listings are
    written and read in one statement, and a recipe nobody listed needs nothing more."""
    m = marketplace
    recipe = Recipe(m, unique("ws"), unique("unlisted"))
    async with statements_sent(m.app.state.runtime.engine) as sent:
        await recipe.assessed(0.4)
    # this recipe's only (the broker's topics also carry other tests' events), not the test's own polls
    statements = [
        sql for sql, parameters in sent if recipe.workspace in parameters and not sql.startswith("SELECT count(*)")
    ]
    touching = [s for s in statements if "quality_" in s or "listings" in s]
    assert len(touching) == 1, touching

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from sous_events.events import ListingApproved, QualityAssessed, RecipeInstalled
from sous_events.ids import new_id
from sous_events.registry import make_event, payload_of
from sous_events.tables import inbox
from sous_local.testing import unique
from sous_marketplace.adapters import projection
from sous_marketplace.adapters.tables import creator_approvals, installs, listings, quality_scores
from sous_marketplace.bootstrap import SERVICE

from .conftest import Marketplace, consume_marketplace_events, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def submit(m: Marketplace, headers: dict[str, str], recipe_id: str, **extra: Any) -> Any:
    return await m.client.post("/api/workflow-recipes/submit", json={"recipe_id": recipe_id, **extra}, headers=headers)


async def browse_ids(m: Marketplace, headers: dict[str, str], **params: Any) -> list[str]:
    response = await m.client.get("/api/marketplace/listings", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_pending_listing_is_hidden_until_approved_then_installs_into_another_workspace(
    marketplace: Marketplace, infra: Any
) -> None:
    m = marketplace
    ws_a, ws_b = unique("ws-a"), unique("ws-b")
    creator, installer = m.headers(ws_a, unique("alice")), m.headers(ws_b, unique("bob"))
    template = unique("digest")
    seeded = await m.seed_recipe(ws_a, template, name=f"Digest {template}", agent_name="Writer")
    # Workspace B already has an agent named Writer: the install maps to it.
    other = await m.seed_recipe(ws_b, unique("other"), agent_name="Writer")

    response = await submit(m, creator, template, icon="📰")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["auto_approved"] is False
    listing_id = body["item_id"]

    assert listing_id not in await browse_ids(m, installer)
    assert (await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=installer)).status_code == 404
    refused = await m.client.post(f"/api/workflow-recipes/install/{listing_id}", headers=installer)
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    queue = await m.client.get("/api/marketplace/queue", headers=m.moderator())
    assert listing_id in [item["id"] for item in queue.json()["items"]]

    approved = await m.client.post(f"/api/marketplace/listings/{listing_id}/approve", headers=m.moderator())
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"

    assert listing_id in await browse_ids(m, installer, category="news", search="digest")
    detail = (await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=installer)).json()
    assert (detail["status"], detail["install_count"], detail["category"], detail["icon"]) == (
        "approved",
        0,
        "news",
        "📰",
    )
    # Nothing private of workspace A in what B sees.
    public = json.dumps(detail)
    assert ws_a not in public and "learning_data" not in public and "use_count" not in public
    assert "OPENAI_API_KEY" not in public and "api_key_env" not in public
    assert detail["agents"][0]["bind_secrets"] == ["model_config.api_key_secret"]
    assert seeded["agent"]["id"] not in public and detail["recipe"]["steps"][0]["agent_name"] == "Writer"

    first = await m.client.post(f"/api/workflow-recipes/install/{listing_id}", headers=installer)
    second = await m.client.post(f"/api/workflow-recipes/install/{listing_id}", headers=installer)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    one, two = first.json(), second.json()
    assert one["install_id"] != two["install_id"]
    new_templates = {r.json()["cloned_items"][0]["template_id"] for r in (first, second)}
    assert len(new_templates) == 2 and all(t.startswith(f"{template}-") for t in new_templates)
    assert one["cloned_items"][1] == {
        "type": "agent",
        "name": "Writer",
        "action": "mapped",
        "agent_id": other["agent"]["id"],
    }
    assert any("Writer" in w for w in one["warnings"])

    detail = (await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=installer)).json()
    assert detail["install_count"] == 2

    events = await consume_marketplace_events(
        infra.kafka_bootstrap,
        lambda e: e.event_type == "RecipeInstalled" and e.payload.get("listing_id") == listing_id,
        expected=2,
    )
    assert len(events) == 2
    by_install = {e.payload["install_id"]: e for e in events}
    assert set(by_install) == {one["install_id"], two["install_id"]}
    for event in events:
        payload = payload_of(event)
        assert isinstance(payload, RecipeInstalled)
        assert event.workspace_id == ws_b == payload.target_workspace_id
        assert (event.aggregate_type, event.aggregate_id, event.aggregate_version) == ("Install", payload.install_id, 1)
        assert payload.recipe.template_id == f"{template}-{payload.install_id.replace('-', '')[:6]}"
        assert payload.recipe.steps[0].agent_id == seeded["agent"]["id"]
        assert [a.name for a in payload.agents] == ["Writer"]
        assert ws_a not in json.dumps(payload.model_dump())
    assert {e.payload["recipe"]["template_id"] for e in events} == new_templates


async def test_creator_with_five_approved_listings_publishes_at_once(marketplace: Marketplace) -> None:
    m = marketplace
    ws = unique("ws")
    creator = m.headers(ws, unique("carol"))
    templates = [unique(f"r{i}") for i in range(6)]
    for template in templates:
        await m.seed_recipe(ws, template)
    for count, template in enumerate(templates[:5], start=1):
        body = (await submit(m, creator, template)).json()
        assert body["auto_approved"] is False
        decided = await m.client.post(f"/api/marketplace/listings/{body['item_id']}/approve", headers=m.moderator())
        assert decided.json()["creator_approved_count"] == count
    mine = (await m.client.get("/api/marketplace/submissions", headers=creator)).json()
    assert (mine["approved_count"], mine["trusted"], mine["total"]) == (5, True, 5)

    body = (await submit(m, creator, templates[5])).json()
    assert body["auto_approved"] is True
    assert body["item_id"] in await browse_ids(m, m.headers(unique("ws"), unique("u")), limit=100)
    mine = (await m.client.get("/api/marketplace/submissions", headers=creator)).json()
    assert mine["approved_count"] == 6

    # Trust is counted per creator: a colleague in the same workspace still waits for moderation.
    colleague = m.headers(ws, unique("dave"))
    await m.seed_recipe(ws, extra := unique("extra"))
    assert (await submit(m, colleague, extra)).json()["auto_approved"] is False


async def test_duplicate_name_is_409_and_a_foreign_recipe_is_404(marketplace: Marketplace) -> None:
    m = marketplace
    ws_a, ws_b = unique("ws-a"), unique("ws-b")
    template = unique("dup")
    await m.seed_recipe(ws_a, template, name=f"Shared {template}", tags=[])
    creator = m.headers(ws_a, unique("erin"))
    first = await submit(m, creator, template)
    assert first.status_code == 200
    again = await submit(m, creator, template)
    assert again.status_code == 409 and again.json()["code"] == "duplicate_listing"
    # Same name from another workspace's recipe is a duplicate too (names are marketplace-wide).
    await m.seed_recipe(ws_b, other := unique("dup"), name=f"shared  {template}")
    assert (await submit(m, m.headers(ws_b, unique("x")), other)).status_code == 409

    foreign = await submit(m, m.headers(ws_b, unique("frank")), template)
    assert foreign.status_code == 404 and foreign.json()["code"] == "not_found"
    assert (await submit(m, creator, unique("missing"))).status_code == 404

    # The category falls back to "General" without tags; a rejected name is free again.
    listing_id = first.json()["item_id"]
    mine = (await m.client.get("/api/marketplace/submissions", headers=creator)).json()
    assert [(i["id"], i["category"]) for i in mine["items"]] == [(listing_id, "General")]
    rejected = await m.client.post(
        f"/api/marketplace/listings/{listing_id}/reject", json={"reason": "duplicate of another"}, headers=m.moderator()
    )
    assert rejected.status_code == 200
    assert (await submit(m, creator, template, category="Ops")).status_code == 200


async def test_moderation_routes_need_the_role_or_the_scope(marketplace: Marketplace) -> None:
    m = marketplace
    ws = unique("ws")
    template = unique("mod")
    await m.seed_recipe(ws, template)
    creator = m.headers(ws, unique("gina"))
    listing_id = (await submit(m, creator, template)).json()["item_id"]
    plain = m.headers(ws, unique("user"), scopes=("recipes:read", "marketplace:submit"))
    for headers in (creator, plain):
        for method, path, body in (
            ("GET", "/api/marketplace/queue", None),
            ("POST", f"/api/marketplace/listings/{listing_id}/approve", None),
            ("POST", f"/api/marketplace/listings/{listing_id}/reject", {"reason": "no"}),
        ):
            response = await m.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (path, response.text)
            assert response.json()["code"] == "forbidden"
    assert (await m.client.get("/api/marketplace/queue")).status_code == 401
    assert (await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=plain)).status_code == 404

    by_role = m.headers(unique("ws"), unique("mod"), roles=("moderator",))
    assert (await m.client.get("/api/marketplace/queue", headers=by_role)).status_code == 200
    approved = await m.client.post(f"/api/marketplace/listings/{listing_id}/approve", headers=by_role)
    assert approved.status_code == 200
    assert (await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=plain)).status_code == 200


async def test_rejection_reason_reaches_the_creator_and_decisions_happen_once(marketplace: Marketplace) -> None:
    m = marketplace
    ws = unique("ws")
    creator = m.headers(ws, unique("hana"))
    t1, t2 = unique("rej"), unique("app")
    await m.seed_recipe(ws, t1)
    await m.seed_recipe(ws, t2)
    rejected_id = (await submit(m, creator, t1)).json()["item_id"]
    approved_id = (await submit(m, creator, t2)).json()["item_id"]
    mod = m.moderator()

    empty = await m.client.post(f"/api/marketplace/listings/{rejected_id}/reject", json={"reason": "  "}, headers=mod)
    assert empty.status_code == 422
    response = await m.client.post(
        f"/api/marketplace/listings/{rejected_id}/reject", json={"reason": "Add a description"}, headers=mod
    )
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert (await m.client.post(f"/api/marketplace/listings/{rejected_id}/approve", headers=mod)).status_code == 409

    assert (await m.client.post(f"/api/marketplace/listings/{approved_id}/approve", headers=mod)).status_code == 200
    twice = await m.client.post(f"/api/marketplace/listings/{approved_id}/approve", headers=mod)
    assert twice.status_code == 409 and twice.json()["code"] == "invalid_transition"
    assert (await m.client.post(f"/api/marketplace/listings/{new_id()}/approve", headers=mod)).status_code == 404

    mine = (await m.client.get("/api/marketplace/submissions", headers=creator)).json()
    status = {i["id"]: (i["status"], i["rejection_reason"]) for i in mine["items"]}
    assert status == {rejected_id: ("rejected", "Add a description"), approved_id: ("approved", None)}
    assert mine["approved_count"] == 1
    # A creator sees their own rejected listing; others get 404 and it is never installable.
    assert (await m.client.get(f"/api/marketplace/listings/{rejected_id}", headers=creator)).json()["rejection_reason"]
    stranger = m.headers(unique("ws"), unique("ivan"))
    assert (await m.client.get(f"/api/marketplace/listings/{rejected_id}", headers=stranger)).status_code == 404
    assert (await m.client.post(f"/api/workflow-recipes/install/{rejected_id}", headers=stranger)).status_code == 404


async def test_duplicate_deliveries_change_nothing_twice_and_rebuild_matches_live(marketplace: Marketplace) -> None:
    m = marketplace
    ws = unique("ws")
    template = unique("q")
    await m.seed_recipe(ws, template)
    creator = m.headers(ws, unique("jo"))
    listing_id = (await submit(m, creator, template)).json()["item_id"]
    assert (
        await m.client.post(f"/api/marketplace/listings/{listing_id}/approve", headers=m.moderator())
    ).status_code == 200
    installer = m.headers(unique("ws"), unique("kim"))
    assert (await m.client.post(f"/api/workflow-recipes/install/{listing_id}", headers=installer)).status_code == 200

    # QualityAssessed: v2 is delivered twice, then a late v1 arrives; the listing shows v2's score once.
    def assessed(version: int, score: float) -> Any:
        payload = QualityAssessed(
            template_id=template,
            execution_id=new_id(),
            quality_score=score,
            rolling_score=score,
            breakdown={},
            grade="B",
        )
        return make_event(
            payload, producer="quality", workspace_id=ws, aggregate_id=f"{ws}:{template}", aggregate_version=version
        )

    consumer = m.runtime.consumers[0]
    duplicates_before = consumer.duplicates
    v2, late_v1 = assessed(2, 0.8), assessed(1, 0.5)
    await m.publish(v2, v2, late_v1)

    async def late_v1_processed() -> bool:
        # Same key, same partition: once the late v1 passed the inbox, both deliveries of v2 did too.
        return await m.count(inbox, inbox.c.event_id == late_v1.event_id) == 1

    await wait_for(late_v1_processed, what="quality events")
    assert await m.count(quality_scores, quality_scores.c.template_id == template) == 1
    detail = (await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=installer)).json()
    assert detail["quality_score"] == pytest.approx(0.8)
    assert consumer.duplicates == duplicates_before + 1

    # The marketplace's own events applied again (redelivery, replay) count trust and installs once.
    async with m.runtime.sessions() as session, session.begin():
        stored = await m.runtime.store.load(session, "Listing", listing_id)
        approval = next(e for e in stored if e.event_type == "ListingApproved")
        assert isinstance(payload_of(approval), ListingApproved)
        await projection.apply_event(session, approval)
        install_events = [e async for e in m.runtime.store.replay(m.runtime.sessions, aggregate_types=["Install"])]
        for event in install_events:
            await projection.apply_event(session, event)
    mine = (await m.client.get("/api/marketplace/submissions", headers=creator)).json()
    assert mine["approved_count"] == 1
    assert (await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=installer)).json()[
        "install_count"
    ] == 1

    live = await _read_models(m)
    assert await SERVICE.rebuild_from_store(m.settings) == 3  # ListingSubmitted, ListingApproved, RecipeInstalled
    assert await _read_models(m) == live


async def _read_models(m: Marketplace) -> list[list[Any]]:
    async with m.runtime.sessions() as session:
        out = []
        for table, key in (
            (listings, listings.c.id),
            (creator_approvals, creator_approvals.c.listing_id),
            (installs, installs.c.id),
        ):
            rows = (await session.execute(select(table).order_by(key))).all()
            out.append([tuple(r) for r in rows])
        return out


async def test_browse_filters_sorts_and_pages(marketplace: Marketplace) -> None:
    m = marketplace
    ws = unique("ws")
    category = unique("cat")
    creator, mod = m.headers(ws, unique("lee")), m.moderator()
    templates = [unique("b") for _ in range(3)]
    ids = []
    for template in templates:
        await m.seed_recipe(ws, template, tags=[category])
        listing_id = (await submit(m, creator, template)).json()["item_id"]
        assert (await m.client.post(f"/api/marketplace/listings/{listing_id}/approve", headers=mod)).status_code == 200
        ids.append(listing_id)
    viewer = m.headers(unique("ws"), unique("max"))
    for _ in range(2):
        assert (await m.client.post(f"/api/workflow-recipes/install/{ids[0]}", headers=viewer)).status_code == 200
    score = QualityAssessed(
        template_id=templates[1], execution_id=new_id(), quality_score=0.9, rolling_score=0.9, breakdown={}, grade="A"
    )
    await m.publish(
        make_event(score, producer="quality", workspace_id=ws, aggregate_id=f"{ws}:{templates[1]}", aggregate_version=1)
    )
    await wait_for(lambda: _has_score(m, ws, templates[1]), what="quality score replica")

    assert await browse_ids(m, viewer, category=category) == [ids[2], ids[1], ids[0]]  # newest first
    assert (await browse_ids(m, viewer, category=category, sort_by="installs"))[0] == ids[0]
    assert (await browse_ids(m, viewer, category=category, sort_by="quality"))[0] == ids[1]
    page = (
        await m.client.get(
            "/api/marketplace/listings", params={"category": category, "skip": 1, "limit": 1}, headers=viewer
        )
    ).json()
    assert (page["total"], [i["id"] for i in page["items"]]) == (3, [ids[1]])
    assert await browse_ids(m, viewer, category=category, search=templates[2]) == [ids[2]]
    bad = await m.client.get("/api/marketplace/listings", params={"sort_by": "random", "limit": 0}, headers=viewer)
    assert bad.status_code == 422


async def _has_score(m: Marketplace, workspace: str, template: str) -> bool:
    return (
        await m.count(
            quality_scores, quality_scores.c.workspace_id == workspace, quality_scores.c.template_id == template
        )
        == 1
    )

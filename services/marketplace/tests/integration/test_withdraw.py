"""Withdrawing a listing: by its creator or a moderator; it leaves the marketplace and frees its name."""

from __future__ import annotations

from typing import Any

import pytest

from sous_local.testing import unique

from .conftest import Marketplace

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def _submit(m: Marketplace, headers: dict[str, str], recipe_id: str) -> Any:
    response = await m.client.post("/api/workflow-recipes/submit", json={"recipe_id": recipe_id}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["item_id"]


async def test_creator_withdraws_a_pending_listing_and_its_name_is_free_again(marketplace: Marketplace) -> None:
    m = marketplace
    ws = unique("ws")
    template = unique("wd")
    await m.seed_recipe(ws, template, name=f"Withdrawn {template}")
    ivy = unique("ivy")
    creator = m.headers(ws, ivy)
    listing_id = await _submit(m, creator, template)
    # someone else of the same workspace, or the creator from another workspace: as if it did not exist
    for stranger in (m.headers(ws, unique("jack")), m.headers(unique("ws"), ivy)):
        refused = await m.client.delete(f"/api/marketplace/listings/{listing_id}", headers=stranger)
        assert refused.status_code == 404, refused.text
    withdrawn = await m.client.delete(f"/api/marketplace/listings/{listing_id}", headers=creator)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json() == {
        "success": True,
        "message": "Listing withdrawn",
        "listing_id": listing_id,
        "status": "withdrawn",
    }
    queue = (await m.client.get("/api/marketplace/queue", headers=m.moderator())).json()["items"]
    assert listing_id not in [item["id"] for item in queue]
    again = await m.client.delete(f"/api/marketplace/listings/{listing_id}", headers=creator)
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")
    approve = await m.client.post(f"/api/marketplace/listings/{listing_id}/approve", headers=m.moderator())
    assert approve.status_code == 409
    assert await _submit(m, creator, template) != listing_id


async def test_a_moderator_withdraws_an_approved_listing(marketplace: Marketplace) -> None:
    m = marketplace
    ws = unique("ws")
    template = unique("wd")
    await m.seed_recipe(ws, template)
    listing_id = await _submit(m, m.headers(ws, unique("kim")), template)
    approved = await m.client.post(f"/api/marketplace/listings/{listing_id}/approve", headers=m.moderator())
    assert approved.status_code == 200, approved.text
    reader = m.headers(unique("ws"), unique("lee"))
    listed = (await m.client.get("/api/marketplace/listings", headers=reader, params={"limit": 100})).json()
    assert listing_id in [item["id"] for item in listed["items"]]
    withdrawn = await m.client.delete(f"/api/marketplace/listings/{listing_id}", headers=m.moderator())
    assert withdrawn.status_code == 200, withdrawn.text
    listed = (await m.client.get("/api/marketplace/listings", headers=reader, params={"limit": 100})).json()
    assert listing_id not in [item["id"] for item in listed["items"]]
    assert (await m.client.get(f"/api/marketplace/listings/{listing_id}", headers=reader)).status_code == 404
    installed = await m.client.post(f"/api/workflow-recipes/install/{listing_id}", headers=reader)
    assert installed.status_code == 404

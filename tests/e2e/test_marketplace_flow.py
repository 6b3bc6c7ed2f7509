"""Sharing a recipe from workspace A to workspace B through moderation."""

from __future__ import annotations

import uuid

import pytest

from .conftest import create_agent, create_recipe, eventually, run_to_end

pytestmark = pytest.mark.e2e


async def test_a_listing_from_a_is_moderated_installed_in_b_and_runs_there(make_api):
    creator = make_api()
    moderator = make_api(roles=("moderator",))
    installer = make_api()
    agent = await create_agent(creator, name=f"summariser-{uuid.uuid4().hex[:4]}")
    recipe = await create_recipe(
        creator,
        [{"step_id": "sum", "order": 1, "agent_id": agent["id"], "prompt_template": "Summarise {input.text}"}],
        inputs={"text": {"type": "string", "required": False, "default": "the news"}},
        tags=["writing"],
        execution_config={"mode": "sequential", "auto_learning": False},
    )

    async def submitted():
        response = await creator.post("/api/workflow-recipes/submit", json={"recipe_id": recipe["template_id"]})
        return response.json() if response.status_code == 200 else None

    submission = await eventually(submitted, what="the marketplace to know the recipe")
    assert submission["auto_approved"] is False
    listing_id = submission["item_id"]

    # Pending: not browsable, not installable.
    assert (await installer.get(f"/api/marketplace/listings/{listing_id}")).status_code == 404
    assert (await installer.post(f"/api/workflow-recipes/install/{listing_id}")).status_code == 404
    assert (await installer.post(f"/api/marketplace/listings/{listing_id}/approve")).status_code == 403
    queue = await moderator.ok("GET", "/api/marketplace/queue")
    assert listing_id in {item["id"] for item in queue["items"]}
    await moderator.ok("POST", f"/api/marketplace/listings/{listing_id}/approve")

    listing = await installer.ok("GET", f"/api/marketplace/listings/{listing_id}")
    assert listing["category"] == "writing"
    first = await installer.ok("POST", f"/api/workflow-recipes/install/{listing_id}")
    second = await installer.ok("POST", f"/api/workflow-recipes/install/{listing_id}")
    assert first["success"] and second["success"]

    async def installed():
        page = await installer.ok("GET", "/api/workflow-recipes", params={"is_public": "false", "limit": 100})
        page2 = await installer.ok("GET", "/api/workflow-recipes", params={"limit": 100})
        clones = {r["template_id"]: r for r in page["items"] + page2["items"]}
        return clones if len(clones) == 2 else None

    clones = await eventually(installed, what="both clones in workspace B")
    assert recipe["template_id"] not in clones
    agents_b = await installer.ok("GET", "/api/agents")
    assert [a["name"] for a in agents_b["items"]] == [agent["name"]]  # created once, then mapped
    assert agents_b["items"][0]["id"] != agent["id"]
    for template_id, clone in clones.items():
        assert clone["steps"][0]["agent_id"] == agents_b["items"][0]["id"]
        result = await run_to_end(installer, template_id)
        assert result["status"] == "completed", result

    # Nothing of A is visible to B.
    assert (await installer.get(f"/api/workflow-recipes/{recipe['template_id']}")).status_code == 404
    assert (await installer.get(f"/api/agents/{agent['id']}")).status_code == 404
    listing = await installer.ok("GET", f"/api/marketplace/listings/{listing_id}")
    assert listing["install_count"] == 2

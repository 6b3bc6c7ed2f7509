"""The quality-gated marketplace through the gateway: a recipe scored below the gate is refused approval with
the reason; an approved listing whose rolling score falls below it later is flagged and leaves "featured".

The stack's gate (tests/e2e/conftest.py) asks for a rolling score of 0.85. The offline model server's
`[[fail:500:N:key]]` directive makes a run's only step fail, which scores it well under that.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .conftest import Api, create_agent, create_recipe, eventually, run_to_end

pytestmark = pytest.mark.e2e

GOOD = {"text": "the harvest"}


def failing(key: str) -> dict[str, str]:
    return {"text": f"the harvest [[fail:500:99:{key}]]"}


async def shared_recipe(creator: Api) -> dict[str, Any]:
    agent = await create_agent(creator, name=f"summariser-{uuid.uuid4().hex[:4]}")
    return await create_recipe(
        creator,
        [{"step_id": "sum", "order": 1, "agent_id": agent["id"], "prompt_template": "Summarise {input.text}"}],
        inputs={"text": {"type": "string", "required": True}},
        tags=["writing"],
        execution_config={"mode": "sequential", "auto_learning": True},
    )


async def assessed_runs(api: Api, template_id: str, count: int) -> dict[str, Any]:
    """Wait until the quality service assessed `count` runs of the recipe (auto-learning, from events)."""

    async def history() -> dict[str, Any] | None:
        response = await api.get(f"/api/workflow-recipes/{template_id}/quality/history")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if body["assessment_count"] >= count else None

    return await eventually(history, what=f"{count} assessed run(s) of {template_id}")  # type: ignore[no-any-return]


async def submit(creator: Api, template_id: str) -> str:
    async def submitted() -> dict[str, Any] | None:
        response = await creator.post("/api/workflow-recipes/submit", json={"recipe_id": template_id})
        return response.json() if response.status_code == 200 else None

    submission = await eventually(submitted, what="the marketplace to know the recipe")
    return str(submission["item_id"])


async def test_a_recipe_scored_below_the_gate_is_refused_approval_with_the_reason(make_api: Any) -> None:
    creator, moderator = make_api(), make_api(roles=("moderator",))
    recipe = await shared_recipe(creator)
    template_id = recipe["template_id"]
    result = await run_to_end(creator, template_id, failing(f"{creator.workspace}-gate"))
    assert result["status"] == "failed", result
    history = await assessed_runs(creator, template_id, 1)
    score = history["quality_score"]
    assert score < 0.85
    listing_id = await submit(creator, template_id)

    # Right after the assessment: the marketplace's replica may not have it yet; quality is read through.
    refused = await moderator.post(f"/api/marketplace/listings/{listing_id}/approve")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "quality_gate_not_met"
    assert body["reason"] == (
        f"the recipe's rolling quality score {score:.2f} over 1 assessed run(s) is below the minimum 0.85"
    )
    assert body["quality"]["assessed_runs"] == 1 and body["quality"]["min_score"] == 0.85
    assert body["quality"]["score"] == pytest.approx(score, abs=1e-4)

    # The queue shows the marketplace's own copy of the assessments, once it has caught up with the run.
    async def queued() -> dict[str, Any] | None:
        queue = await moderator.ok("GET", "/api/marketplace/queue", params={"kind": "pending", "limit": 100})
        [item] = [i for i in queue["items"] if i["id"] == listing_id]
        return item if item["assessed_runs"] >= 1 else None

    item = await eventually(queued, what="the marketplace's copy of the assessment")
    assert (item["status"], item["quality_gate"]["met"]) == ("pending", False)
    assert item["quality_gate"]["reason"] == body["reason"]


async def test_a_listing_whose_score_falls_below_the_gate_later_is_flagged_and_leaves_featured(
    make_api: Any,
) -> None:
    creator, moderator, visitor = make_api(), make_api(roles=("moderator",)), make_api()
    recipe = await shared_recipe(creator)
    template_id = recipe["template_id"]
    assert (await run_to_end(creator, template_id, GOOD))["status"] == "completed"
    good = await assessed_runs(creator, template_id, 1)
    assert good["quality_score"] >= 0.85, good
    listing_id = await submit(creator, template_id)
    await moderator.ok("POST", f"/api/marketplace/listings/{listing_id}/approve")

    async def featured_ids() -> set[str]:
        page = await visitor.ok("GET", "/api/marketplace/listings", params={"featured": "true", "limit": 100})
        return {item["id"] for item in page["items"]}

    assert listing_id in await featured_ids()

    result = await run_to_end(creator, template_id, failing(f"{creator.workspace}-later"))
    assert result["status"] == "failed", result
    fallen = await assessed_runs(creator, template_id, 2)
    assert fallen["quality_score"] < 0.85, fallen

    async def flagged() -> dict[str, Any] | None:
        queue = await moderator.ok("GET", "/api/marketplace/queue", params={"kind": "flagged", "limit": 100})
        return next((item for item in queue["items"] if item["id"] == listing_id), None)

    item = await eventually(flagged, what="the listing to be flagged to moderators")
    assert (item["status"], item["flagged"], item["featured"]) == ("approved", True, False)
    assert item["flag_reason"] == (
        f"the recipe's rolling quality score {fallen['quality_score']:.2f} over 2 assessed run(s) "
        "is below the minimum 0.85"
    )
    assert item["assessed_runs"] == 2
    assert item["score_trend"] == pytest.approx([p["rolling_score"] for p in fallen["points"]], abs=1e-4)
    assert listing_id not in await featured_ids()
    # Still installable: a moderator decides what happens to it.
    public = await visitor.ok("GET", f"/api/marketplace/listings/{listing_id}")
    assert (public["status"], public["flagged"], public["featured"]) == ("approved", True, False)


async def test_replaying_a_run_is_no_new_evidence_for_the_gate(make_api: Any) -> None:
    """A replay without changes reuses every result: it costs nothing, so were it counted a creator could replay
    one good run until the gate's run count and score were met. It is scored, but not counted."""
    creator, moderator = make_api(), make_api(roles=("moderator",))
    template_id = (await shared_recipe(creator))["template_id"]
    original = await run_to_end(creator, template_id, GOOD)
    assert original["status"] == "completed", original
    first = await assessed_runs(creator, template_id, 1)

    path = f"/api/workflow-recipes/{template_id}/executions/{original['execution_id']}/replay"
    started = await creator.ok("POST", path, 202, json={})
    assert started["plan"]["rerun_steps"] == [] and started["plan"]["reused_steps"] == ["sum"]
    replay_id = started["replay_execution_id"]

    async def replay_assessed() -> dict[str, Any] | None:
        response = await creator.post(
            f"/api/workflow-recipes/{template_id}/assess-quality", json={"execution_id": replay_id}
        )
        return response.json() if response.status_code == 200 else None

    replayed = await eventually(replay_assessed, what="the replay to be assessed")
    assert replayed["counted"] is False and replayed["rolling_score"] == first["quality_score"]

    # A real run after it: once the marketplace has seen that one, it has seen the replay's assessment too.
    assert (await run_to_end(creator, template_id, failing(f"{creator.workspace}-after")))["status"] == "failed"
    history = await assessed_runs(creator, template_id, 2)
    assert history["assessment_count"] == 2 and replay_id not in {p["execution_id"] for p in history["points"]}
    listing_id = await submit(creator, template_id)

    async def gate_sees_two() -> dict[str, Any] | None:
        queue = await moderator.ok("GET", "/api/marketplace/queue", params={"kind": "pending", "limit": 100})
        item = next((i for i in queue["items"] if i["id"] == listing_id), None)
        return item if item is not None and item["assessed_runs"] >= 2 else None

    item = await eventually(gate_sees_two, what="the marketplace to see both assessed runs")
    assert item["assessed_runs"] == 2
    assert item["score_trend"] == pytest.approx([p["rolling_score"] for p in history["points"]], abs=1e-4)

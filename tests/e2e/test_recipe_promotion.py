"""Promoting a recipe version through the gateway: what-if replays of the recipe's last executions decide.

A version whose changed step fails on the offline model (`[[fail:500:N:key]]`) scores far below the runs it
replays: its promotion is refused with the replay report, and the recipe keeps its current step. A harmless
change is promoted and becomes current.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .conftest import Api, create_agent, create_recipe, eventually, run_to_end

pytestmark = pytest.mark.e2e


async def two_step_recipe(api: Api) -> dict[str, Any]:
    agent = await create_agent(api, name=f"cook-{uuid.uuid4().hex[:4]}")
    steps = [
        {"step_id": "s1", "order": 1, "agent_id": agent["id"], "prompt_template": "Outline {input.dish}"},
        {"step_id": "s2", "order": 2, "agent_id": agent["id"], "prompt_template": "Write up: {steps.s1.output}"},
    ]
    return await create_recipe(
        api,
        steps,
        inputs={"dish": {"type": "string", "required": True}},
        execution_config={"mode": "sequential", "auto_learning": True},
    )


async def assessed(api: Api, template_id: str, count: int) -> None:
    async def enough() -> bool:
        response = await api.get(f"/api/workflow-recipes/{template_id}/quality/history")
        return response.status_code == 200 and response.json()["assessment_count"] >= count

    await eventually(enough, what=f"{count} assessed runs of {template_id}")


async def propose(api: Api, recipe: dict[str, Any], s2_prompt: str) -> int:
    steps = [{k: v for k, v in s.items() if k != "agent"} for s in recipe["steps"]]
    steps[1]["prompt_template"] = s2_prompt
    proposed = await api.ok(
        "POST", f"/api/workflow-recipes/{recipe['template_id']}/versions", 201, json={"steps": steps}
    )
    assert proposed["version"]["status"] == "proposed"
    return int(proposed["version"]["revision"])


async def promote(api: Api, template_id: str, revision: int) -> Any:
    async def decided() -> Any:
        response = await api.post(f"/api/workflow-recipes/{template_id}/versions/{revision}/promote")
        return None if response.status_code == 202 else response

    return await eventually(decided, timeout_s=180, what=f"the promotion of version {revision} to be decided")


async def test_a_promotion_that_would_lower_quality_is_refused_with_the_replay_report(make_api: Any) -> None:
    api = make_api()
    recipe = await two_step_recipe(api)
    template_id = recipe["template_id"]
    for dish in ("focaccia", "risotto"):
        assert (await run_to_end(api, template_id, {"dish": dish}))["status"] == "completed"
    await assessed(api, template_id, 2)

    worse = await propose(api, recipe, f"Write up: {{steps.s1.output}} [[fail:500:99:{api.workspace}-worse]]")
    refused = await promote(api, template_id, worse)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "promotion_refused"
    assert body["reasons"][0].startswith("quality would drop: the replays score")
    report = body["report"]
    assert report["promoted"] is False and report["executions_replayed"] == 2
    assert report["candidate_quality"] < report["baseline_quality"]
    for replay in report["replays"]:
        # Only the changed step ran again; the first reused its recorded output.
        assert (replay["changed_steps"], replay["rerun_steps"]) == (["s2"], ["s2"])
        assert replay["status"] == "failed" and replay["replay_quality"] < replay["original_quality"]
    current = await api.ok("GET", f"/api/workflow-recipes/{template_id}")
    assert current["steps"][1]["prompt_template"] == "Write up: {steps.s1.output}"
    kept = await api.ok("GET", f"/api/workflow-recipes/{template_id}/versions/{worse}")
    assert kept["status"] == "refused" and kept["report"] == report

    better = await propose(
        api, await api.ok("GET", f"/api/workflow-recipes/{template_id}"), "Plate up: {steps.s1.output}"
    )
    promoted = await promote(api, template_id, better)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["report"]["promoted"] is True
    current = await api.ok("GET", f"/api/workflow-recipes/{template_id}")
    assert current["steps"][1]["prompt_template"] == "Plate up: {steps.s1.output}"

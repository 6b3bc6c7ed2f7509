"""What-if replay through the gateway: only the changed step and its descendants call the model again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from sous_local.stack import Stack
from tests.e2e.conftest import Api, create_agent, create_recipe, eventually, run_to_end

R = "/api/workflow-recipes"


async def counters(stack: Stack) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(stack.model_url.removesuffix("/v1") + "/_sous/counters")
    response.raise_for_status()
    return dict(response.json()["tags"])


async def finished_report(api: Api, template_id: str, replay_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        report = await api.ok("GET", f"{R}/{template_id}/executions/{replay_id}/replay-report")
        return report if report["finished"] else None

    return await eventually(done, timeout_s=90, what=f"replay {replay_id} to finish")  # type: ignore[no-any-return]


async def test_replay_with_step_2_changed_reruns_steps_2_and_3_only(stack: Stack, make_api: Callable[..., Api]) -> None:
    api = make_api()
    agent = await create_agent(api)
    tag = uuid.uuid4().hex[:8]
    steps = [
        {
            "step_id": "s1",
            "order": 1,
            "agent_id": agent["id"],
            "prompt_template": f"[[tag:{tag}-s1]] Outline {{input.topic}}",
        },
        {
            "step_id": "s2",
            "order": 2,
            "agent_id": agent["id"],
            "prompt_template": f"[[tag:{tag}-s2]] Draft {{steps.s1.output}}",
        },
        {
            "step_id": "s3",
            "order": 3,
            "agent_id": agent["id"],
            "prompt_template": f"[[tag:{tag}-s3]] Polish {{steps.s2.output}}",
        },
    ]
    recipe = await create_recipe(api, steps)
    template_id = recipe["template_id"]
    original = await run_to_end(api, template_id, {"topic": "tides"})
    assert original["status"] == "completed"
    eid = original["execution_id"]
    assert {k: v for k, v in (await counters(stack)).items() if k.startswith(tag)} == {
        f"{tag}-s1": 1,
        f"{tag}-s2": 1,
        f"{tag}-s3": 1,
    }

    override = {"prompt_template": f"[[tag:{tag}-s2]] Rewrite in one line {{steps.s1.output}}"}
    started = await api.ok(
        "POST", f"{R}/{template_id}/executions/{eid}/replay", 202, json={"step_overrides": {"s2": override}}
    )
    assert started["replay_of"] == eid
    assert started["plan"] == {
        "changed_steps": ["s2"],
        "rerun_steps": ["s2", "s3"],
        "reused_steps": ["s1"],
        "removed_steps": [],
    }
    report = await finished_report(api, template_id, started["replay_execution_id"])

    assert report["status"] == "completed"
    assert {k: v for k, v in (await counters(stack)).items() if k.startswith(tag)} == {
        f"{tag}-s1": 1,
        f"{tag}-s2": 2,
        f"{tag}-s3": 2,
    }
    steps_by_id = {s["step_id"]: s for s in report["steps"]}
    assert not steps_by_id["s1"]["rerun"] and not steps_by_id["s1"]["output_changed"]
    assert steps_by_id["s2"]["rerun"] and steps_by_id["s2"]["output_changed"]
    assert "+Offline answer: Rewrite in one line" in steps_by_id["s2"]["diff"]
    assert steps_by_id["s3"]["rerun"] and steps_by_id["s3"]["output_changed"]
    assert report["changed_steps"] == ["s2"] and report["rerun_steps"] == ["s2", "s3"]
    totals = report["totals"]
    assert totals["replay_spent"]["tokens"] > 0
    assert totals["replay"]["tokens"] == totals["original"]["tokens"] + totals["delta"]["tokens"]

    # Runs of recipes with auto_learning are assessed as they finish; asking again returns that assessment.
    for execution_id in (eid, report["replay_execution_id"]):

        async def assessed(execution_id: str = execution_id) -> bool:
            response = await api.post(f"{R}/{template_id}/assess-quality", json={"execution_id": execution_id})
            return response.status_code == 200

        await eventually(assessed, what=f"assessment of {execution_id}")

    async def with_quality() -> dict[str, Any] | None:
        again = await api.ok("GET", f"{R}/{template_id}/executions/{report['replay_execution_id']}/replay-report")
        return again if again["totals"]["delta"]["quality_score"] is not None else None

    scored = await eventually(with_quality, what="quality scores in the replay report")
    assert scored["totals"]["original"]["quality_score"] is not None


async def test_replay_of_a_recipe_revision_and_its_errors(stack: Stack, make_api: Callable[..., Api]) -> None:
    api = make_api()
    agent = await create_agent(api)
    tag = uuid.uuid4().hex[:8]
    steps = [
        {"step_id": "a", "order": 1, "agent_id": agent["id"], "prompt_template": f"[[tag:{tag}-a]] Name a colour"},
        {
            "step_id": "b",
            "order": 2,
            "agent_id": agent["id"],
            "prompt_template": f"[[tag:{tag}-b]] Rhyme {{steps.a.output}}",
        },
    ]
    recipe = await create_recipe(api, steps)
    template_id = recipe["template_id"]
    original = await run_to_end(api, template_id)
    eid = original["execution_id"]
    steps[1] = {**steps[1], "prompt_template": f"[[tag:{tag}-b]] Make a haiku of {{steps.a.output}}"}
    updated = await api.ok("PUT", f"{R}/{template_id}", json={"steps": steps})
    revision = updated["recipe"]["revision"]

    started = await api.ok("POST", f"{R}/{template_id}/executions/{eid}/replay", 202, json={"revision": revision})
    assert started["plan"]["rerun_steps"] == ["b"] and started["plan"]["reused_steps"] == ["a"]
    report = await finished_report(api, template_id, started["replay_execution_id"])
    assert report["changed_outputs"] == ["b"]
    assert (await counters(stack))[f"{tag}-a"] == 1

    unknown_step = await api.post(
        f"{R}/{template_id}/executions/{eid}/replay", json={"step_overrides": {"nope": {"prompt_template": "x"}}}
    )
    assert unknown_step.status_code == 422 and "step_overrides.nope" in unknown_step.text
    unknown_revision = await api.post(f"{R}/{template_id}/executions/{eid}/replay", json={"revision": 999})
    assert unknown_revision.status_code == 422 and "revision" in unknown_revision.text
    bad_schema = await api.post(
        f"{R}/{template_id}/executions/{eid}/replay",
        json={"step_overrides": {"b": {"output_schema": {"type": "no-such-type"}}}},
    )
    assert bad_schema.status_code == 422 and "output_schema" in bad_schema.text
    missing = await api.post(f"{R}/{template_id}/executions/nope/replay", json={})
    assert missing.status_code == 404
    not_a_replay = await api.get(f"{R}/{template_id}/executions/{eid}/replay-report")
    assert not_a_replay.status_code == 409

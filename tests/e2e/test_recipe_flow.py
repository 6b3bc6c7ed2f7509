"""A user's whole path through the gateway: agents, recipes, runs, quality, learning."""

from __future__ import annotations

import uuid

import pytest

from .conftest import create_agent, create_recipe, eventually, run_to_end, wait_for_recipe_at_executor

pytestmark = pytest.mark.e2e


async def test_a_three_step_recipe_runs_and_is_scored_and_the_catalog_shows_the_rolling_score(make_api):
    api = make_api()
    agent = await create_agent(api)
    steps = [
        {"step_id": "outline", "order": 1, "agent_id": agent["id"], "prompt_template": "Outline {input.topic}"},
        {
            "step_id": "draft",
            "order": 2,
            "agent_id": agent["id"],
            "prompt_template": "Draft from: {steps.outline.output}",
        },
        {"step_id": "polish", "order": 3, "agent_id": agent["id"], "prompt_template": "Polish: {previous_output}"},
    ]
    recipe = await create_recipe(
        api,
        steps,
        inputs={"topic": {"type": "string", "required": True}},
        execution_config={"mode": "sequential", "auto_learning": False},
    )
    result = await run_to_end(api, recipe["template_id"], {"topic": "sourdough"})
    assert result["status"] == "completed", result
    outputs = {s["step_id"]: s for s in result["step_results"]}
    assert "sourdough" in outputs["outline"]["output"]
    assert outputs["outline"]["output"].split("[ref:")[0].strip() in outputs["draft"]["output"]
    assert all(s["tokens_used"]["total"] > 0 and s["duration_ms"] >= 0 for s in result["step_results"])

    async def assessment():
        # The quality service learns of the finish from events: until then it answers 409 execution_not_finished.
        response = await api.post(
            f"/api/workflow-recipes/{recipe['template_id']}/assess-quality",
            json={"execution_id": result["execution_id"]},
        )
        if response.status_code == 409 and response.json()["code"] == "execution_not_finished":
            return None
        assert response.status_code == 200, response.text
        return response.json()

    assessed = await eventually(assessment, what="the quality service to see the run finished")
    assert set(assessed["breakdown"]) == {"completeness", "accuracy", "efficiency", "reliability", "cost"}
    assert assessed["grade"] in "ABCDF"

    async def catalog_score():
        shown = await api.ok("GET", f"/api/workflow-recipes/{recipe['template_id']}")
        return shown if shown["quality_score"] == pytest.approx(assessed["quality_score"], abs=1e-4) else None

    shown = await eventually(catalog_score, what="the catalog to show the rolling score")
    assert shown["use_count"] >= 1

    learned = await api.ok(
        "POST", f"/api/workflow-recipes/{recipe['template_id']}/learn", json={"execution_id": result["execution_id"]}
    )
    assert learned["performance_metrics"]["total_steps"] == 3
    suggestions = await api.ok("GET", f"/api/workflow-recipes/{recipe['template_id']}/suggestions")
    assert suggestions["analysis_count"] == 1


async def test_a_retried_and_a_failed_step_are_assessed_and_learned_from_automatically(make_api):
    api = make_api()
    agent = await create_agent(api)
    key = api.workspace
    steps = [
        {
            "step_id": "flaky",
            "order": 1,
            "agent_id": agent["id"],
            "error_handling": "retry",
            "max_retries": 3,
            "retry_delay": 0.1,
            "prompt_template": f"Flaky [[fail:500:1:{key}-flaky]]",
        },
        {
            "step_id": "broken",
            "order": 2,
            "agent_id": agent["id"],
            "error_handling": "continue",
            "prompt_template": f"Broken [[fail:500:50:{key}-broken]]",
        },
        {"step_id": "last", "order": 3, "agent_id": agent["id"], "prompt_template": "Finish"},
    ]
    recipe = await create_recipe(
        api, steps, execution_config={"mode": "sequential", "auto_learning": True, "retry_delay": 0.1}
    )
    result = await run_to_end(api, recipe["template_id"])
    by_step = {s["step_id"]: s for s in result["step_results"]}
    assert by_step["flaky"]["status"] == "completed" and by_step["flaky"]["attempt"] == 2
    assert by_step["broken"]["status"] == "failed"
    assert by_step["last"]["status"] == "completed"

    async def learned():
        data = await api.ok("GET", f"/api/workflow-recipes/{recipe['template_id']}/suggestions")
        return data if data["analysis_count"] >= 1 else None

    suggestions = await eventually(learned, what="auto-learning without any API call")
    types = {p["type"] for p in suggestions["patterns"]}
    assert {"step_failure", "retry_needed"} <= types
    suggestion_types = {(s["type"], s.get("step_id")) for s in suggestions["suggestions"]}
    assert ("prompt_rewrite", "broken") in suggestion_types
    assert ("tool_addition", "flaky") in suggestion_types

    async def scored():
        shown = await api.ok("GET", f"/api/workflow-recipes/{recipe['template_id']}")
        return shown if shown["quality_score"] else None

    shown = await eventually(scored, what="the catalog to show the automatic score")
    history = await api.ok("GET", f"/api/workflow-recipes/{recipe['template_id']}/quality/history")
    points = history["points"]
    assert len(points) == 1
    assert shown["quality_score"] == pytest.approx(points[0]["rolling_score"], abs=1e-4)
    # Asking again returns the stored assessment and does not move the rolling score.
    again = await api.ok(
        "POST",
        f"/api/workflow-recipes/{recipe['template_id']}/assess-quality",
        json={"execution_id": result["execution_id"]},
    )
    assert again["quality_score"] == pytest.approx(points[0]["quality_score"], abs=1e-4)
    assert {b["type"] for b in again["bottlenecks"]} >= {"failed_step"}


async def test_a_retried_execute_through_the_gateway_starts_once_and_a_key_never_crosses_workspaces(make_api):
    """The gateway forwards Idempotency-Key; keys are the workspace's own, so another tenant sending the same
    key on a recipe of the same name starts its own run and learns nothing of the first."""
    key = f"retry-{uuid.uuid4().hex}"
    template_id = f"r-{uuid.uuid4().hex[:8]}"
    started: dict[str, list[dict]] = {}
    for tenant in ("first", "second"):
        api = make_api()
        agent = await create_agent(api)
        steps = [{"step_id": "only", "order": 1, "agent_id": agent["id"], "prompt_template": "Say {input.topic}"}]
        await create_recipe(api, steps, template_id=template_id, inputs={"topic": {"type": "string"}})
        await wait_for_recipe_at_executor(api, template_id)
        path = f"/api/workflow-recipes/{template_id}/execute"
        answers = [
            await api.post(path, json={"input_data": {"topic": tenant}}, headers={"Idempotency-Key": key})
            for _ in range(2)
        ]
        assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
        assert answers[1].headers.get("Idempotent-Replayed") == "true"
        started[tenant] = [a.json() for a in answers]
        listed = await api.ok("GET", f"/api/workflow-recipes/{template_id}/executions")
        assert listed["total"] == 1

    first, second = started["first"], started["second"]
    assert first[0]["execution_id"] == first[1]["execution_id"] and first[1]["replayed"]
    assert second[0]["execution_id"] == second[1]["execution_id"] and not second[0]["replayed"]
    assert first[0]["execution_id"] != second[0]["execution_id"]

"""Findings 6 and 11: quotas a workspace cannot opt out of, graph caps, and server-side learnings.

Attacks through the gateway: running without a budget, running past the daily quota, a cron schedule
firing every minute, a recipe whose dependency graph is made to be expensive, and an assessment that
brings its own "learnings" to steer the score.
"""

from __future__ import annotations

import uuid

import pytest

from .conftest import RUNS_QUOTA_WORKSPACE, TOKENS_QUOTA_WORKSPACE
from .secure_helpers import agent, recipe, run, wait_finished

pytestmark = pytest.mark.e2e

OFFLINE = {"provider": "offline", "model_id": "sous-offline-1"}


async def test_the_workspace_token_budget_applies_when_the_recipe_sets_none(make_api) -> None:
    api = make_api(workspace=TOKENS_QUOTA_WORKSPACE)  # SOUS_WORKSPACE_QUOTAS: max_tokens 5
    made = await agent(api, OFFLINE)
    created = await recipe(api, made["id"], "Write a long story about budgets")
    assert "max_tokens" not in created["execution_config"] or created["execution_config"]["max_tokens"] is None
    done = await run(api, created["template_id"])
    assert done["status"] == "failed"
    assert "token budget exceeded" in (done["error_message"] or done["step_results"][0]["error"])


async def test_runs_per_day_are_refused_with_429_at_execute(make_api) -> None:
    api = make_api(workspace=RUNS_QUOTA_WORKSPACE)  # SOUS_WORKSPACE_QUOTAS: runs_per_day 2
    made = await agent(api, OFFLINE)
    created = await recipe(api, made["id"])
    path = f"/api/workflow-recipes/{created['template_id']}/execute"
    for _ in range(2):
        started = await api.ok("POST", path, 202, json={"input_data": {}})
        await wait_finished(api, created["template_id"], started["execution_id"])
    refused = await api.request("POST", path, json={"input_data": {}})
    assert refused.status_code == 429 and refused.json()["code"] == "quota_exceeded"
    assert int(refused.headers["Retry-After"]) > 0


async def test_a_cron_schedule_more_frequent_than_the_minimum_is_refused(make_api) -> None:
    api = make_api()
    made = await agent(api, OFFLINE)
    base = {
        "template_id": f"r-{uuid.uuid4().hex[:6]}",
        "name": "every minute",
        "description": "d",
        "template_definition": {},
        "steps": [{"step_id": "s", "order": 1, "agent_id": made["id"]}],
    }
    for expression in ("* * * * *", "0,1 * * * *"):
        response = await api.request(
            "POST",
            "/api/workflow-recipes",
            json={**base, "schedule_config": {"type": "cron", "cron_expression": expression}},
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "schedule_config.cron_expression"
    ok = {**base, "schedule_config": {"type": "cron", "cron_expression": "*/5 * * * *"}}
    assert (await api.request("POST", "/api/workflow-recipes", json=ok)).status_code == 201


async def test_a_dense_dependency_graph_is_refused_with_a_field_path(make_api) -> None:
    api = make_api()
    made = await agent(api, OFFLINE)
    # 101 steps each depending on every earlier one: 5050 edges, past the default cap of 5000.
    steps = [
        {"step_id": f"s{i}", "order": i, "agent_id": made["id"], "depends_on": [f"s{j}" for j in range(i)]}
        for i in range(101)
    ]
    body = {
        "template_id": f"r-{uuid.uuid4().hex[:6]}",
        "name": "dense",
        "description": "d",
        "template_definition": {},
        "steps": steps,
    }
    response = await api.request("POST", "/api/workflow-recipes", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "steps" and "edges" in response.json()["errors"][0]["message"]


async def test_assess_quality_refuses_client_supplied_learnings(make_api) -> None:
    api = make_api()
    made = await agent(api, OFFLINE)
    created = await recipe(api, made["id"])
    done = await run(api, created["template_id"])
    path = f"/api/workflow-recipes/{created['template_id']}/assess-quality"
    forged = {"execution_id": done["execution_id"], "learnings": {"patterns": []}}
    refused = await api.request("POST", path, json=forged)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "learnings"

"""Quotas at execution request: budgets written into the execution, runs per day, graph caps on stored recipes."""

from __future__ import annotations

import json

import pytest
from executor_harness import (
    ModelServer,
    agent_snapshot,
    context_header,
    events_of,
    executor_settings,
    recipe_snapshot,
    running_executor,
    seed,
    start,
    step,
    wait_finished,
)

from sous_local.testing import Infrastructure, unique

pytestmark = pytest.mark.integration


async def test_quotas_apply_to_every_execution_of_the_workspace(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    ws, other = unique("ws"), unique("ws")
    settings = executor_settings(
        fresh_database,
        infra.kafka_bootstrap,
        model_server,
        default_max_cost_usd=0.5,
        max_recipe_steps=2,
        workspace_quotas=json.dumps({ws: {"max_tokens": 100000, "runs_per_day": 2}}),
    )
    async with running_executor(settings) as executor:
        agent = agent_snapshot(ws)
        capped = recipe_snapshot(ws, [step("a", 1, agent["id"], "hi")], execution_config={"max_cost_usd": 2})
        await seed(executor, ws, capped, [agent])
        first = await start(executor, ws, capped["template_id"])
        requested = next(e for e in await events_of(executor, first) if e.event_type == "ExecutionRequested")
        # The recipe asked for more than the workspace allows: the workspace's cap is what the engine enforces.
        budget = requested.payload["recipe"]["execution_config"]
        assert (budget["max_tokens"], budget["max_cost_usd"]) == (100000, 0.5)
        done = await wait_finished(executor, ws, capped["template_id"], first)
        rerun = await executor.client.post(
            f"/api/workflow-recipes/{capped['template_id']}/executions/{first}/rerun",
            json={},
            headers=context_header(settings, ws),
        )
        assert rerun.status_code == 202 and done["status"] == "completed"
        refused = await executor.client.post(
            f"/api/workflow-recipes/{capped['template_id']}/execute", json={}, headers=context_header(settings, ws)
        )
        assert refused.status_code == 429 and refused.json()["code"] == "quota_exceeded"

        # Stored before the caps (the catalog refuses such recipes now): refused at execute, with the field.
        agent_b = agent_snapshot(other)
        big = recipe_snapshot(other, [step(s, i, agent_b["id"], "hi") for i, s in enumerate("abc", 1)])
        await seed(executor, other, big, [agent_b])
        too_big = await executor.client.post(
            f"/api/workflow-recipes/{big['template_id']}/execute", json={}, headers=context_header(settings, other)
        )
        assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "steps"

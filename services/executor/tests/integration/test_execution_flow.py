"""Executions end to end inside one executor: real PostgreSQL, real broker, the offline model over HTTP."""

from __future__ import annotations

import pytest
from executor_harness import (
    Running,
    agent_snapshot,
    events_of,
    recipe_snapshot,
    seed,
    start,
    step,
    wait_finished,
)
from sous_local.testing import unique

pytestmark = pytest.mark.integration


async def test_three_step_recipe_completes_with_results(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    marker = unique("topic")
    recipe = recipe_snapshot(
        ws,
        [
            step("research", 1, agent["id"], f"Research {{input.topic}} {marker}"),
            step("draft", 2, agent["id"], "Draft from: {steps.research.output}"),
            step("polish", 3, agent["id"], "Polish: {previous_output}", output_key="final"),
        ],
        inputs={"topic": {"type": "string", "required": True}},
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"], {"topic": "bread"})
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "completed", body
    results = body["step_results"]
    assert [r["step_id"] for r in results] == ["research", "draft", "polish"]
    for result in results:
        assert result["status"] == "completed"
        assert result["output"]
        assert result["tool_calls"] == []
        assert result["duration_ms"] > 0
        assert result["tokens_used"]["total"] > 0
    assert f"Research bread {marker}" in results[0]["output"]
    # The second step's prompt embedded the first step's output, which the offline model echoes.
    assert results[0]["output"] in results[1]["output"]
    assert results[1]["output"] in results[2]["output"]
    assert body["output_data"]["final"] == results[2]["output"]
    assert body["total_tokens"] == sum(r["tokens_used"]["total"] for r in results)
    types = [e.event_type for e in await events_of(executor, eid)]
    assert types == [
        "ExecutionRequested",
        "ExecutionStarted",
        *["StepStarted", "StepCompleted"] * 3,
        "ExecutionFinished",
    ]

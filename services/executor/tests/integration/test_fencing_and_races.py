"""A runner that lost its lease stops acting; cancels racing completions; budgets across parallel steps."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from executor_harness import (
    ModelServer,
    Running,
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
    wait_for,
)
from sqlalchemy import select
from sqlalchemy.engine import make_url

from sous_executor.adapters.tables import leases
from sous_local.faultproxy import FaultProxy
from sous_local.testing import Infrastructure, unique

pytestmark = pytest.mark.integration

CALC = '[[tool:calculator {"expression": "%d+1"}]]'


async def served(model: ModelServer, marker: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        return dict((await client.get(f"{model.url}/_sous/calls", params={"contains": marker})).json())


@pytest.mark.fault
async def test_an_instance_cut_from_its_database_makes_no_model_call_after_losing_the_lease(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    url = make_url(fresh_database)
    proxy = await FaultProxy(str(url.host), int(url.port or 5432)).start()
    # Instance A talks to its own model server, so every call it makes is counted apart from B's.
    model_a = ModelServer()
    model_a.start()
    try:
        proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
        settings_a = executor_settings(proxied, infra.kafka_bootstrap, model_a)
        settings_b = executor_settings(fresh_database, infra.kafka_bootstrap, model_server)
        ws = unique("ws")
        agent = agent_snapshot(ws, skills=["calculator"])
        m = unique("fence")
        rounds = " ".join(CALC % i for i in range(8))
        recipe = recipe_snapshot(
            ws,
            [step("long", 1, agent["id"], f"fenced {m} {rounds} [[latency:500]]", max_iterations=20)],
            execution_config={"timeout_per_step": 120, "total_timeout": 300},
        )
        async with running_executor(settings_a) as a:
            await seed(a, ws, recipe, [agent])
            eid = await start(a, ws, recipe["template_id"])

            async def a_called() -> bool:
                return await model_a.calls(m) >= 1

            await wait_for(a_called, within=60)
            async with running_executor(settings_b) as b:
                proxy.cut()

                async def b_owns() -> bool:
                    async with b.executor.service.sessions() as session:
                        owner = (
                            await session.execute(select(leases.c.owner).where(leases.c.execution_id == eid))
                        ).scalar_one_or_none()
                    return owner == settings_b.runner_id

                await wait_for(b_owns, within=60)
                calls_at_takeover = await model_a.calls(m)
                proxy.restore()
                body = await wait_finished(b, ws, recipe["template_id"], eid, within=120)
                assert body["status"] == "completed", body["error_message"]
                # The step was redone by B; A stopped calling the model before B could take over.
                assert await model_a.calls(m) == calls_at_takeover
                assert await model_server.calls(m) >= 1
    finally:
        proxy.restore()
        await proxy.stop()
        model_a.stop()


async def test_cancel_racing_completion_records_one_outcome_per_step(
    executor: Running, model_server: ModelServer
) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws, skills=["calculator"])
    m = unique("race")
    recipe = recipe_snapshot(ws, [step("only", 1, agent["id"], f"race {m} {CALC % 2}")])
    await seed(executor, ws, recipe, [agent])
    tid = recipe["template_id"]
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> tuple[str, dict[str, Any]]:
        async with gate:
            eid = await start(executor, ws, tid)
            # Cancel as the step starts, after its first model answer, or once its outcome is written (as the run
            # is finishing).
            wanted = ("StepStarted", "StepUsageRecorded", "StepCompleted")[i % 3]
            count = 1

            async def reached() -> bool:
                types = [e.event_type for e in await events_of(executor, eid)]
                return types.count(wanted) >= count or "ExecutionFinished" in types

            await wait_for(reached, within=60, interval=0.01)
            response = await executor.client.post(
                f"/api/workflow-recipes/{tid}/executions/{eid}/cancel", headers=context_header(executor.settings, ws)
            )
            assert response.status_code in (200, 202, 409), response.text
            return eid, await wait_finished(executor, ws, tid, eid)

    results = await asyncio.gather(*(one(i) for i in range(50)))
    recorded = 0
    for eid, body in results:
        events = await events_of(executor, eid)
        outcomes = [
            e
            for e in events
            if e.event_type == "StepCompleted" or (e.event_type == "StepFailed" and not e.payload.get("will_retry"))
        ]
        skipped = [e for e in events if e.event_type == "StepSkipped"]
        assert len(outcomes) + len(skipped) == 1, [e.event_type for e in events]
        # On a starved machine a model call can also fail (a timeout): the outcome rule holds all the same.
        assert body["status"] in ("completed", "cancelled", "failed"), body["error_message"]
        recorded += body["total_tokens"]
    assert recorded == (await served(model_server, m))["total_tokens"]


async def test_parallel_steps_are_held_to_the_token_budget(executor: Running, model_server: ModelServer) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws, model_config={"provider": "offline", "model_id": "gpt-4o-mini", "max_tokens": 600})
    m = unique("budget")
    limit = 1200
    recipe = recipe_snapshot(
        ws,
        [step(f"p{i}", i, agent["id"], f"spend {m} {i} [[tokens:500]] [[latency:300]]") for i in range(1, 6)],
        execution_config={"mode": "parallel", "parallel_limit": 5, "max_tokens": limit},
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "failed" and "budget" in body["error_message"]
    calls = (await served(model_server, m))["calls"]
    largest = max(c["total_tokens"] for c in calls)
    spent = sum(c["total_tokens"] for c in calls)
    # The bound stated in the README: the limit plus one call started alone (estimates hold: max_tokens set).
    assert spent <= limit + largest, json.dumps([c["total_tokens"] for c in calls])
    assert body["total_tokens"] == spent
    assert len(calls) < 5

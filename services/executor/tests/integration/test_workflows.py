"""Workflows in one executor process: a run through the nine stages on the engine without the quality
service, and its read models rebuilt from the event store."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from executor_harness import Running, agent_snapshot, context_header, recipe_snapshot, seed, step
from sqlalchemy import select, update

from sous_executor.workflows.consumers import RUNNERS_GROUP
from sous_executor.workflows.rebuild import rebuild_workflow_read_models
from sous_executor.workflows.runner import WorkflowTimings
from sous_executor.workflows.tables import workflow_leases, workflow_memory, workflow_runs, workflows
from sous_local.testing import unique

pytestmark = pytest.mark.integration


async def call(executor: Running, ws: str, method: str, path: str, status: int, **kw: Any) -> Any:
    response = await executor.client.request(method, path, headers=context_header(executor.settings, ws), **kw)
    assert response.status_code == status, response.text
    return response.json()


async def finished_run(executor: Running, ws: str, workflow_id: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run = await call(executor, ws, "GET", f"/api/workflows/{workflow_id}/runs/{run_id}", 200)
        if run["status"] in ("completed", "failed", "cancelled"):
            return run  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def test_a_run_completes_without_the_quality_service_and_its_read_models_rebuild(executor: Running) -> None:
    executor.app.state.workflows.runner.timings = WorkflowTimings(quality_wait_s=0.3, poll_s=0.05)
    ws = unique("ws")
    agent = agent_snapshot(ws, name="writer")
    await seed(executor, ws, recipe_snapshot(ws, [step("only", 1, agent["id"], "x")]), [agent])
    created = await call(
        executor,
        ws,
        "POST",
        "/api/workflows",
        201,
        json={"name": "Notes", "task_template": "Outline {topic}\nWrite about {topic}", "inputs": {"topic": {}}},
    )
    workflow_id = created["workflow"]["id"]
    runs = []
    for topic in ("rye", "spelt"):
        started = await call(
            executor, ws, "POST", f"/api/workflows/{workflow_id}/execute", 202, json={"input_data": {"topic": topic}}
        )
        runs.append(await finished_run(executor, ws, workflow_id, started["run_id"]))
    first, second = runs
    assert [r["status"] for r in runs] == ["completed", "completed"], [r["error_message"] for r in runs]
    assert first["stages"][5]["output"] == {
        "available": False,
        "reason": "the quality service did not report within 0.3s",
    }
    assert first["subtasks"][1]["depends_on"] == ["s1"] and first["subtasks"][0]["agent_id"] == agent["id"]
    # Both tasks share "outline" and "write": the second run finds the first in memory.
    assert first["run_id"] in [m["run_id"] for m in second["stages"][2]["output"]["memories"]]

    sessions = executor.executor.runtime.sessions

    async def snapshot() -> list[list[tuple[object, ...]]]:
        async with sessions() as session:
            return [
                [tuple(r) for r in await session.execute(select(table).order_by(*table.primary_key.columns))]
                for table in (workflows, workflow_runs, workflow_memory)
            ]

    live = await snapshot()
    async with sessions() as session, session.begin():
        await session.execute(update(workflow_runs).values(status="pending", doc={}))
    assert await snapshot() != live
    assert await rebuild_workflow_read_models(sessions) >= 2 * 20
    assert await snapshot() == live


async def test_cancelling_a_run_in_stage_four_cancels_its_execution(executor: Running) -> None:
    executor.app.state.workflows.runner.timings = WorkflowTimings(quality_wait_s=0.3, poll_s=0.05)
    ws = unique("ws")
    agent = agent_snapshot(ws, name="writer")
    await seed(executor, ws, recipe_snapshot(ws, [step("only", 1, agent["id"], "x")]), [agent])
    created = await call(
        executor, ws, "POST", "/api/workflows", 201, json={"name": "Slow", "task_template": "Wait ((latency:1500))"}
    )
    workflow_id = created["workflow"]["id"]
    run_id = (await call(executor, ws, "POST", f"/api/workflows/{workflow_id}/execute", 202))["run_id"]
    path = f"/api/workflows/{workflow_id}/runs/{run_id}"
    deadline = time.monotonic() + 60
    while (await call(executor, ws, "GET", path, 200))["stages"][3]["status"] != "running":
        assert time.monotonic() < deadline, "stage 4 never started"
        await asyncio.sleep(0.05)
    active = await call(executor, ws, "GET", "/api/workflows/active", 200)
    shown = {r["run_id"]: r for r in active["workflow_runs"]}[run_id]
    assert shown["current_stage"] == {"number": 4, "name": "agent_execution"} and shown["progress"] >= 0.333
    assert shown["execution_id"] in [e["execution_id"] for e in active["active_workflows"]]
    dashboard = await call(executor, ws, "GET", "/api/workflows/stats/dashboard", 200)
    assert dashboard["workflows"]["active_runs"] == 1 and dashboard["overview"]["total_workflows"] == 1
    cancelled = await call(executor, ws, "POST", f"{path}/cancel", 202, json={"reason": "changed my mind"})
    assert cancelled["status"] == "cancelling"
    run = await finished_run(executor, ws, workflow_id, run_id)
    assert run["status"] == "cancelled" and run["stages"][3]["code"] == "cancelled"
    assert all(s["status"] == "pending" for s in run["stages"][4:])
    execution = await call(
        executor, ws, "GET", f"/api/workflow-recipes/{run['recipe_id']}/executions/{run['execution_id']}", 200
    )
    assert execution["status"] == "cancelled"
    again = await executor.client.post(f"{path}/cancel", headers=context_header(executor.settings, ws))
    assert again.status_code == 409


async def test_the_accepting_instance_claims_a_run_and_drives_it_without_the_broker(executor: Running) -> None:
    executor.app.state.workflows.runner.timings = WorkflowTimings(quality_wait_s=0.3, poll_s=0.05)
    # With the runners' consumer stopped, only the request's own transaction can have claimed the run.
    for consumer in executor.executor.runtime.consumers:
        if consumer.name == RUNNERS_GROUP:
            await consumer.stop()
    ws = unique("ws")
    agent = agent_snapshot(ws, name="writer")
    await seed(executor, ws, recipe_snapshot(ws, [step("only", 1, agent["id"], "x")]), [agent])
    created = await call(executor, ws, "POST", "/api/workflows", 201, json={"name": "Local", "task_template": "Do it"})
    workflow_id = created["workflow"]["id"]
    run_id = (await call(executor, ws, "POST", f"/api/workflows/{workflow_id}/execute", 202))["run_id"]

    async with executor.executor.runtime.sessions() as session:
        owner = (
            await session.execute(select(workflow_leases.c.owner).where(workflow_leases.c.run_id == run_id))
        ).scalar_one()
    assert owner == executor.settings.runner_id
    run = await finished_run(executor, ws, workflow_id, run_id)
    assert run["status"] == "completed", run["error_message"]


async def test_agent_selection_waits_for_the_workspaces_first_agent_to_reach_the_replica(executor: Running) -> None:
    executor.app.state.workflows.runner.timings = WorkflowTimings(quality_wait_s=0.3, poll_s=0.05)
    ws = unique("ws")
    created = await call(executor, ws, "POST", "/api/workflows", 201, json={"name": "Early", "task_template": "Go"})
    workflow_id = created["workflow"]["id"]
    run_id = (await call(executor, ws, "POST", f"/api/workflows/{workflow_id}/execute", 202))["run_id"]
    path = f"/api/workflows/{workflow_id}/runs/{run_id}"
    deadline = time.monotonic() + 60
    while (run := await call(executor, ws, "GET", path, 200))["stages"][0]["status"] != "completed":
        assert run["status"] in ("pending", "running"), run["error_message"]
        assert time.monotonic() < deadline, "stage 1 never completed"
        await asyncio.sleep(0.05)
    # The agent, created just before the run, reaches this replica only now.
    agent = agent_snapshot(ws, name="writer")
    await seed(executor, ws, recipe_snapshot(ws, [step("only", 1, agent["id"], "x")]), [agent])
    run = await finished_run(executor, ws, workflow_id, run_id)
    assert run["status"] == "completed", run["error_message"]
    assert run["subtasks"][0]["agent_id"] == agent["id"]


async def test_agent_selection_fails_the_run_when_no_agent_arrives_within_the_wait(executor: Running) -> None:
    executor.app.state.workflows.runner.timings = WorkflowTimings(quality_wait_s=0.3, poll_s=0.05, agent_wait_s=0.5)
    ws = unique("ws")
    created = await call(executor, ws, "POST", "/api/workflows", 201, json={"name": "Alone", "task_template": "Go"})
    workflow_id = created["workflow"]["id"]
    run_id = (await call(executor, ws, "POST", f"/api/workflows/{workflow_id}/execute", 202))["run_id"]
    run = await finished_run(executor, ws, workflow_id, run_id)
    assert run["status"] == "failed" and run["stages"][1]["code"] == "no_agent", run["stages"][1]
    assert run["stages"][0]["status"] == "completed"

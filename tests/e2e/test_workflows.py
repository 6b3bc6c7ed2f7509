"""Workflows through the gateway: nine stages on the live stream, subtasks on the engine, memory across
runs, a plan saved as a recipe, an invalid planner, and an executor killed during stage 4."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from sous_local.stack import Stack

from .conftest import Api, create_agent, eventually, run_to_end

pytestmark = pytest.mark.e2e

STAGES = [
    "decomposition",
    "agent_selection",
    "context_engineering",
    "agent_execution",
    "result_aggregation",
    "learning_update",
    "quality_assessment",
    "memory_storage",
    "response_generation",
]


async def create_workflow(api: Api, task_template: str, **extra: Any) -> dict[str, Any]:
    body = {
        "name": extra.pop("name", f"Workflow {uuid.uuid4().hex[:6]}"),
        "description": "an end-to-end workflow",
        "task_template": task_template,
        **extra,
    }
    created = await api.ok("POST", "/api/workflows", 201, json=body)
    return created["workflow"]  # type: ignore[no-any-return]


async def start(api: Api, workflow_id: str, input_data: dict[str, Any] | None = None) -> str:
    started = await api.ok("POST", f"/api/workflows/{workflow_id}/execute", 202, json={"input_data": input_data or {}})
    return str(started["run_id"])


async def stream_events(api: Api, workflow_id: str, run_id: str, timeout_s: float = 180.0) -> list[dict[str, Any]]:
    """Every event of the run's live stream, until WorkflowRunFinished."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    path = f"/api/workflows/{workflow_id}/runs/{run_id}/events"
    last = ""
    while time.monotonic() < deadline:
        headers = {"Last-Event-ID": last} if last else {}
        try:
            async with api.client.stream(
                "GET", path, headers={**api.headers, **headers}, timeout=httpx.Timeout(10.0, read=60.0)
            ) as response:
                assert response.status_code == 200, await response.aread()
                kind, data = "", ""
                async for line in response.aiter_lines():
                    if line.startswith("id: "):
                        last = line[4:]
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line == "" and kind:
                        events.append({"type": kind, **json.loads(data)})
                        if kind == "WorkflowRunFinished":
                            return events
                        kind, data = "", ""
        except (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError):
            continue  # the stream is resumable: Last-Event-ID picks up after the last event seen
    raise AssertionError(f"run {run_id} did not finish; saw {[e['type'] for e in events]}")


async def wait_run(api: Api, workflow_id: str, run_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        run = await api.ok("GET", f"/api/workflows/{workflow_id}/runs/{run_id}")
        return run if run["status"] in ("completed", "failed", "cancelled") else None

    return await eventually(finished, timeout_s=timeout_s, what=f"workflow run {run_id}")  # type: ignore[no-any-return]


def stage_sequence(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [
        (e["type"], e["payload"]["stage"])
        for e in events
        if e["type"] in ("WorkflowStageStarted", "WorkflowStageCompleted", "WorkflowStageFailed")
    ]


async def test_a_workflow_runs_nine_stages_learns_remembers_and_its_plan_becomes_a_recipe(make_api):
    api = make_api()
    writer = await create_agent(api, "writer")
    counter = await create_agent(api, "counter", skills=["calculator"])
    key = f"{api.workspace}-flaky"
    workflow = await create_workflow(
        api,
        "Research {topic} figures with the calculator ((fail:500:1:" + key + "))\n"
        "Write a short history of {input.topic}\n"
        "Combine the findings into an answer",
        inputs={"topic": {"type": "string", "required": True}},
        tags=["baking"],
        configuration={"agent_ids": [writer["id"], counter["id"]], "retry_delay": 0.1},
    )
    run_id = await start(api, workflow["id"], {"topic": "sourdough"})
    events = await stream_events(api, workflow["id"], run_id)

    expected = [(t, n) for n in range(1, 10) for t in ("WorkflowStageStarted", "WorkflowStageCompleted")]
    assert stage_sequence(events) == expected
    assert events[-1]["type"] == "WorkflowRunFinished" and events[-1]["payload"]["status"] == "completed"
    # The subtasks ran on the engine, interleaved with the stages on the same stream; s1 failed once, then passed.
    steps = [e for e in events if e["type"] in ("StepStarted", "StepCompleted", "StepFailed")]
    s1 = [(e["type"], e["payload"]["attempt"]) for e in steps if e["payload"]["step_id"] == "s1"]
    assert ("StepFailed", 1) in s1 and ("StepCompleted", 2) in s1
    assert {e["payload"]["step_id"] for e in steps if e["type"] == "StepCompleted"} == {"s1", "s2", "s3"}
    order = [e["type"] for e in events]
    assert order.index("ExecutionRequested") > order.index("WorkflowStageStarted")

    run = await api.ok("GET", f"/api/workflows/{workflow['id']}/runs/{run_id}")
    assert run["status"] == "completed" and run["progress"] == 1.0 and run["final_answer"]
    assert [s["name"] for s in run["stages"]] == STAGES
    by_id = {s["id"]: s for s in run["subtasks"]}
    assert by_id["s1"]["agent_id"] == counter["id"] and "1/1 required skills" in by_id["s1"]["selection_reason"]
    assert by_id["s3"]["depends_on"] == ["s1", "s2"]
    assert "sourdough" in run["task"]
    quality = run["stages"][6]["output"]
    assert quality["available"] is True and quality["grade"] in "ABCDF"
    learning = run["stages"][5]["output"]
    assert learning["available"] is True
    assert "retry_needed" in {p["type"] for p in learning["patterns"]}

    # A second run finds the first one in the workspace memory (stage 3) and last run's lessons.
    second_id = await start(api, workflow["id"], {"topic": "sourdough"})
    second = await wait_run(api, workflow["id"], second_id)
    assert second["status"] == "completed", second["error_message"]
    context = second["stages"][2]["output"]
    assert run_id in [m["run_id"] for m in context["memories"]]
    assert f"From memory (run {run_id})" in context["contexts"][0]["prompt"]
    assert context["suggestions"], "the first run's learned suggestions reach the second run's context"
    found = await api.ok("GET", "/api/workflows/memory/search", params={"q": "sourdough history"})
    assert run_id in [m["run_id"] for m in found["items"]]

    # The plan becomes a recipe of the catalog, and that recipe runs.
    template_id = f"plan-{uuid.uuid4().hex[:8]}"
    saved = await api.ok(
        "POST",
        f"/api/workflows/{workflow['id']}/runs/{run_id}/save-as-recipe",
        201,
        json={"template_id": template_id, "name": "Sourdough plan"},
    )
    assert [s["step_id"] for s in saved["recipe"]["steps"]] == ["s1", "s2", "s3"]
    result = await run_to_end(api, template_id)
    assert result["status"] == "completed", result

    listed = await api.ok("GET", "/api/workflows", params={"q": workflow["name"], "tag": "baking"})
    assert [w["id"] for w in listed["items"]] == [workflow["id"]]
    dashboard = await api.ok("GET", "/api/workflows/stats/dashboard")
    assert dashboard["workflows"]["completed_runs"] == 2 and dashboard["workflows"]["total_workflows"] == 1
    active = await api.ok("GET", "/api/workflows/active")
    assert active["workflow_runs"] == [] and active["total_active_workflow_runs"] == 0


async def test_an_invalid_plan_is_retried_with_its_errors_then_fails_stage_one(make_api):
    api = make_api()
    await create_agent(api, "writer")
    broken = await create_workflow(api, "Plan this [[plan:invalid]]", configuration={"planner_max_attempts": 2})
    run_id = await start(api, broken["id"])
    run = await wait_run(api, broken["id"], run_id)
    assert run["status"] == "failed"
    first = run["stages"][0]
    assert first["status"] == "failed" and first["code"] == "invalid_plan"
    assert [r["attempt"] for r in first["rejected_plans"]] == [1, 2]
    assert "not valid JSON" in first["rejected_plans"][0]["errors"][0]
    assert "stage 1 (decomposition)" in run["error_message"] and "no valid plan in 2 attempts" in run["error_message"]
    assert all(s["status"] == "pending" for s in run["stages"][1:])

    # Corrected after one rejection: the errors were fed back and the second answer is used.
    healed = await create_workflow(api, "Plan this [[plan:invalid:1]]")
    healed_run = await start(api, healed["id"])

    async def planned() -> dict[str, Any] | None:
        view = await api.ok("GET", f"/api/workflows/{healed['id']}/runs/{healed_run}")
        return view if view["stages"][0]["status"] != "running" and view["stages"][0]["status"] != "pending" else None

    view = await eventually(planned, timeout_s=60, what="stage 1 of the corrected run")
    assert view["stages"][0]["status"] == "completed" and view["stages"][0]["output"]["attempts"] == 2


async def test_crud_and_errors(make_api):
    api = make_api()
    workflow = await create_workflow(api, "Summarise {text}", inputs={"text": {"type": "string", "required": True}})
    missing = await api.post(f"/api/workflows/{workflow['id']}/execute", json={"input_data": {}})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "input_data.text"
    bad = await api.post("/api/workflows", json={"name": "x", "task_template": "Use {nope}"})
    assert bad.status_code == 422
    conflict = await api.put(f"/api/workflows/{workflow['id']}", json={"status": "archived"}, headers={"If-Match": "7"})
    assert conflict.status_code == 409
    updated = await api.ok(
        "PUT", f"/api/workflows/{workflow['id']}", json={"status": "archived"}, headers={"If-Match": "1"}
    )
    assert updated["workflow"]["status"] == "archived" and updated["workflow"]["revision"] == 2
    archived = await api.post(f"/api/workflows/{workflow['id']}/execute", json={"input_data": {"text": "a"}})
    assert archived.status_code == 409 and archived.json()["code"] == "workflow_archived"
    other = await make_api().get(f"/api/workflows/{workflow['id']}")
    assert other.status_code == 404
    await api.ok("DELETE", f"/api/workflows/{workflow['id']}")
    assert (await api.get(f"/api/workflows/{workflow['id']}")).status_code == 404


@pytest.mark.fault
async def test_an_executor_killed_during_stage_four_resumes_there_without_repeating_work(make_api, stack: Stack):
    api = make_api()
    await create_agent(api, "writer")
    marker = uuid.uuid4().hex[:10]
    # The slow subtask stays within the e2e lease (4 s): the engine fences a step that outlives its lease.
    workflow = await create_workflow(
        api,
        f"Quick note {marker}\nSlow research {marker} ((latency:3000))\nCombine {marker}",
    )
    run_id = await start(api, workflow["id"])

    last_view: dict[str, Any] = {}

    async def slow_step_running() -> dict[str, Any] | None:
        run = await api.ok("GET", f"/api/workflows/{workflow['id']}/runs/{run_id}")
        last_view.update(run)
        assert run["status"] in ("pending", "running"), f"the run ended before stage 4's slow subtask: {run}"
        if not run["execution_id"]:
            return None
        recipe_id = run["recipe_id"]
        execution = await api.ok("GET", f"/api/workflow-recipes/{recipe_id}/executions/{run['execution_id']}")
        steps = {s["step_id"]: s["status"] for s in execution["step_results"]}
        return run if steps.get("s1") == "completed" and steps.get("s2") == "running" else None

    try:
        await eventually(slow_step_running, timeout_s=120, what="stage 4 with the slow subtask running")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the run last read: {last_view}") from exc
    stack.kill("executor")
    stack.start_service("executor")
    events = await stream_events(api, workflow["id"], run_id)

    failures = [(e["type"], e["payload"]) for e in events if e["payload"].get("error")]
    assert events[-1]["payload"]["status"] == "completed", failures
    sequence = stage_sequence(events)
    expected = [(t, n) for n in range(1, 10) for t in ("WorkflowStageStarted", "WorkflowStageCompleted")]
    assert sequence == expected, "no stage started or completed twice"
    completed = [e["payload"]["step_id"] for e in events if e["type"] == "StepCompleted"]
    assert sorted(completed) == ["s1", "s2", "s3"], "no subtask completed twice"
    async with httpx.AsyncClient(base_url=stack.model_url.removesuffix("/v1")) as model:
        calls = (await model.get("/_sous/calls", params={"contains": marker})).json()["calls"]
    planner_calls = [c for c in calls if "planner of a multi-agent workflow" in json.dumps(c["messages"])]
    assert len(planner_calls) == 1, "stage 1 ran once"

"""A rerun of a run whose kept steps produced large outputs: its request stays small (the kept outputs are read
from the original run, not copied into the request), and every kept output is still there in full."""

from __future__ import annotations

import json
from typing import Any

import pytest
from executor_harness import (
    Running,
    agent_snapshot,
    context_header,
    events_of,
    recipe_snapshot,
    seed,
    start,
    step,
    wait_finished,
)

from sous_events.store import DEFAULT_MAX_EVENT_BYTES
from sous_local.testing import unique

pytestmark = pytest.mark.integration

KEPT = 5


def encoded(envelope: Any) -> int:
    return len(json.dumps(envelope.model_dump(mode="json"), ensure_ascii=False).encode())


async def test_a_rerun_keeping_more_output_than_one_event_holds_starts_and_keeps_every_output(
    executor: Running,
) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m = unique("m")
    # Each kept step's output is close to the cap of one event's output: together they are several events' worth.
    size = executor.settings.event_output_max_bytes - 4096
    steps = [step(f"s{i}", i, agent["id"], f"part {i} {m} [[huge:{size}]]") for i in range(1, KEPT + 1)]
    steps.append(step("last", KEPT + 1, agent["id"], f"sum up {m}: {{previous_output}}"))
    recipe = recipe_snapshot(ws, steps, execution_config={"timeout_per_step": 60, "total_timeout": 300})
    tid = recipe["template_id"]
    await seed(executor, ws, recipe, [agent])
    original = await start(executor, ws, tid)
    assert (await wait_finished(executor, ws, tid, original, within=240))["status"] == "completed"
    kept_before = {
        e.payload["step_id"]: e.payload for e in await events_of(executor, original) if e.event_type == "StepCompleted"
    }
    assert KEPT * size > DEFAULT_MAX_EVENT_BYTES

    response = await executor.client.post(
        f"/api/workflow-recipes/{tid}/executions/{original}/rerun",
        json={"from_step": "last"},
        headers=context_header(executor.settings, ws),
    )

    assert response.status_code == 202, response.text
    rerun = response.json()["execution_id"]
    body = await wait_finished(executor, ws, tid, rerun, within=240)
    assert body["status"] == "completed", body["error_message"]
    events = await events_of(executor, rerun)
    assert max(encoded(e) for e in events) < DEFAULT_MAX_EVENT_BYTES
    assert encoded(events[0]) < 64 * 1024  # the request names the kept steps; it does not carry their outputs
    kept = {e.payload["step_id"]: e.payload for e in events if e.event_type == "StepCompleted" and e.payload["reused"]}
    assert sorted(kept) == [f"s{i}" for i in range(1, KEPT + 1)]
    for sid, payload in kept.items():
        assert payload["output"] == kept_before[sid]["output"] and len(payload["output"]) >= size - 64
        assert payload["tokens"]["total"] == 0 and payload["cost_usd"] == 0
    shown = {r["step_id"]: r for r in body["step_results"]}
    assert shown["s3"]["output"] == kept_before["s3"]["output"] and shown["s3"]["reused"]


async def test_a_run_of_json_steps_with_large_answers_finishes_with_a_small_summary(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m = unique("m")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    # Each step answers a JSON object holding the whole document: parsed, it is as large as the answer.
    document = "proofing " * 20_000
    steps = [
        step(f"j{i}", i, agent["id"], f'[[answers:{m}-{i} [{{"answer": "{{input.doc}}"}}]]]', output_schema=schema)
        for i in range(1, KEPT + 2)
    ]
    recipe = recipe_snapshot(
        ws, steps, inputs={"doc": {"type": "string"}}, execution_config={"timeout_per_step": 60, "total_timeout": 300}
    )
    await seed(executor, ws, recipe, [agent])
    assert (KEPT + 1) * len(document) > DEFAULT_MAX_EVENT_BYTES

    eid = await start(executor, ws, recipe["template_id"], {"doc": document})

    body = await wait_finished(executor, ws, recipe["template_id"], eid, within=240)
    assert body["status"] == "completed", body["error_message"]
    events = await events_of(executor, eid)
    finished = next(e for e in events if e.event_type == "ExecutionFinished")
    assert encoded(finished) < 64 * 1024
    # The read model still shows each step's parsed answer.
    assert all(r["output_json"] == {"answer": document} for r in body["step_results"])

"""Poison data: huge outputs, NUL in model answers and tool results, a step whose outcome cannot be written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from executor_harness import (
    ModelServer,
    Running,
    agent_snapshot,
    events_of,
    recipe_snapshot,
    seed,
    start,
    step,
    wait_finished,
)
from sqlalchemy import text

from sous_events.store import DEFAULT_MAX_EVENT_BYTES
from sous_executor.domain.outcomes import BARE_ERROR_CHARS
from sous_executor.engine import runner
from sous_local.testing import unique

pytestmark = pytest.mark.integration


def encoded(envelope: Any) -> int:
    return len(json.dumps(envelope.model_dump(mode="json"), ensure_ascii=False).encode())


async def test_large_outputs_are_stored_once_and_every_event_stays_small(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m = unique("m")
    steps = [step(f"s{i:02d}", i, agent["id"], f"part {i} {m} [[huge:20000]]") for i in range(1, 20)]
    steps.append(step("big", 20, agent["id"], f"big {m} [[huge:2097152]]", output_key="report"))
    recipe = recipe_snapshot(ws, steps, execution_config={"timeout_per_step": 60, "total_timeout": 300})
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    # Another execution (another aggregate) runs alongside and must not be held up.
    small = recipe_snapshot(ws, [step("one", 1, agent["id"], f"small {m}")])
    await seed(executor, ws, small, [agent])
    other = await start(executor, ws, small["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid, within=240)
    assert body["status"] == "completed", body["error_message"]
    assert (await wait_finished(executor, ws, small["template_id"], other))["status"] == "completed"

    events = await events_of(executor, eid)
    assert max(encoded(e) for e in events) < DEFAULT_MAX_EVENT_BYTES
    cap = executor.settings.event_output_max_bytes
    completed = {e.payload["step_id"]: e for e in events if e.event_type == "StepCompleted"}
    big = completed["big"].payload
    assert big["output_truncated"] and big["output_chars"] >= 2 * 1024 * 1024
    assert "output truncated by Sous" in big["output"] and encoded(completed["big"]) < cap + 8192
    assert len(completed["s01"].payload["output"]) >= 20000 and not completed["s01"].payload["output_truncated"]
    finished = next(e for e in events if e.event_type == "ExecutionFinished")
    # A summary: no step output repeated, previews of the named outputs, references to the full ones.
    assert encoded(finished) < 64 * 1024
    assert finished.payload["summary"] and finished.payload["output_refs"]["report"] == "big"
    assert all("output" not in r for r in finished.payload["step_results"])
    # The read model still shows every output in full (as stored in its StepCompleted).
    assert body["output_data"]["report"] == big["output"]
    assert body["step_results"][0]["output"] == completed["s01"].payload["output"]


async def test_nul_in_a_model_answer_and_a_tool_result_is_removed(executor: Running, model_server: ModelServer) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws, skills=["json_extract"])
    m = unique("nul")
    document = json.dumps({"a": "x\u0000y\ud800z"})
    tool = json.dumps({"json": document, "path": "a"})
    recipe = recipe_snapshot(
        ws,
        [
            step("answer", 1, agent["id"], f"poison {m} [[nul]]"),
            step("tool", 2, agent["id"], f"tool {m} [[tool:json_extract {tool}]]"),
        ],
        execution_config={"max_retries": 2},
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "completed", body
    answer, tool_step = body["step_results"]
    assert "\x00" not in answer["output"] and answer["output"].startswith("Offline answer:")
    assert answer["attempt"] == 1
    result = tool_step["tool_calls"][0]["result"]
    assert result["value"] == "xyz", result
    # One call for the answer, two for the tool round and the final answer: nothing was repeated.
    assert await model_server.calls(m) == 3


async def test_a_step_whose_outcome_cannot_be_written_fails_as_a_crash_loop(
    executor: Running, model_server: ModelServer
) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m = unique("loop")
    recipe = recipe_snapshot(ws, [step("doomed", 1, agent["id"], f"doomed {m}", error_handling="retry", max_retries=5)])
    await seed(executor, ws, recipe, [agent])
    service = executor.executor.service
    # The database refuses this step's StepCompleted, as it refused jsonb with NUL before text hygiene.
    name = "refuse_" + m.replace("-", "_")
    async with service.sessions() as session, session.begin():
        await session.execute(
            text(
                f"""
                CREATE FUNCTION {name}() RETURNS trigger AS $$
                BEGIN
                  IF NEW.event_type = 'StepCompleted' AND NEW.envelope::text LIKE '%{m}%' THEN
                    RAISE EXCEPTION 'refused on purpose';
                  END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
        )
        await session.execute(
            text(f"CREATE TRIGGER {name} BEFORE INSERT ON event_store FOR EACH ROW EXECUTE FUNCTION {name}()")
        )
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid, within=120)
    limit = executor.settings.crash_loop_claims
    assert body["status"] == "failed"
    result = body["step_results"][0]
    assert result["error_type"] == "crash_loop" and result["status"] == "failed"
    assert await model_server.calls(m) == limit
    # Every attempt reached the model; all their tokens are recorded and counted.
    async with httpx.AsyncClient() as client:
        served = (await client.get(f"{model_server.url}/_sous/calls", params={"contains": m})).json()
    assert body["total_tokens"] == served["total_tokens"] > 0
    events = await events_of(executor, eid)
    assert [e.event_type for e in events].count("StepStarted") == limit


async def test_a_run_whose_finish_is_too_large_to_store_still_finishes_with_a_bare_one(
    executor: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m = unique("finish")
    recipe = recipe_snapshot(ws, [step("one", 1, agent["id"], f"first {m}"), step("two", 2, agent["id"], "then")])
    tid = recipe["template_id"]
    await seed(executor, ws, recipe, [agent])
    whole = runner.finished_event

    def oversized(*args: Any) -> Any:
        # Whatever made it so (a summary of very many steps, a huge error), this finish cannot be stored.
        finished = whole(*args)
        return finished.model_copy(update={"error": "x" * DEFAULT_MAX_EVENT_BYTES})

    monkeypatch.setattr(runner, "finished_event", oversized)

    eid = await start(executor, ws, tid)

    body = await wait_finished(executor, ws, tid, eid, within=120)
    assert body["status"] == "completed"
    assert [r["status"] for r in body["step_results"]] == ["completed", "completed"]
    assert m in body["step_results"][0]["output"]
    events = await events_of(executor, eid)
    [finish] = [e for e in events if e.event_type == "ExecutionFinished"]
    assert finish.payload["step_results"] == [] and finish.payload["status"] == "completed"
    assert len(finish.payload["error"]) == BARE_ERROR_CHARS and encoded(finish) < 16 * 1024

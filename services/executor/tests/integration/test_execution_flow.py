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
from sqlalchemy import text

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
    # A final answer's usage is carried by the step's outcome (no StepUsageRecorded of its own), and the outcome is
    # written by the statement that starts the next step; the last one finishes the run: four appends for three
    # steps.
    written_by = await transactions_of(executor, eid)
    boundaries = [[3], [4, 5], [6, 7], [8, 9]]
    assert [{written_by[v] for v in group} for group in boundaries] == [{written_by[g[0]]} for g in boundaries]
    assert len({written_by[v] for v in range(3, 10)}) == 4


async def transactions_of(executor: Running, eid: str) -> dict[int, int]:
    """Each event's version -> the transaction that wrote it."""
    async with executor.executor.service.sessions() as session:
        rows = await session.execute(
            text("SELECT aggregate_version, xmin::text FROM event_store WHERE aggregate_id = :e"), {"e": eid}
        )
        return {int(version): int(xid) for version, xid in rows}


def by_type(events: list, event_type: str, step_id: str | None = None) -> list:
    return [
        e for e in events if e.event_type == event_type and (step_id is None or e.payload.get("step_id") == step_id)
    ]


async def three_steps(executor: Running, middle: str, handling: str, **middle_extra: object) -> tuple[str, str, str]:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(
        ws,
        [
            step("one", 1, agent["id"], f"first {unique('m')}"),
            step("two", 2, agent["id"], middle, error_handling=handling, **middle_extra),
            step("three", 3, agent["id"], "third after {steps.one.output}"),
        ],
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    return ws, recipe["template_id"], eid


async def test_retry_completes_on_third_attempt_with_exponential_backoff(executor: Running) -> None:
    ws, tid, eid = await three_steps(
        executor, f"flaky {unique('m')} [[fail:500:2]]", "retry", max_retries=3, retry_delay=0.1
    )
    body = await wait_finished(executor, ws, tid, eid)
    assert body["status"] == "completed", body
    two = body["step_results"][1]
    assert two["status"] == "completed" and two["attempt"] == 3
    events = await events_of(executor, eid)
    started = by_type(events, "StepStarted", "two")
    failed = by_type(events, "StepFailed", "two")
    scheduled = by_type(events, "StepRetryScheduled", "two")
    assert [e.payload["attempt"] for e in started] == [1, 2, 3]
    assert [e.payload["will_retry"] for e in failed] == [True, True]
    assert all("500" in e.payload["error"] for e in failed)
    delays = [e.payload["delay_s"] for e in scheduled]
    assert [e.payload["next_attempt"] for e in scheduled] == [2, 3]
    assert 0.1 <= delays[0] <= 0.11 and 0.2 <= delays[1] <= 0.22
    # Each new attempt starts no earlier than its scheduled retry time.
    waits = []
    for fail, next_start in zip(failed, started[1:], strict=True):
        assert next_start.occurred_at >= fail.occurred_at
        waits.append((next_start.occurred_at - fail.occurred_at).total_seconds())
    assert waits[0] >= delays[0] and waits[1] >= delays[1]


async def test_continue_records_failure_and_finishes_the_rest(executor: Running) -> None:
    ws, tid, eid = await three_steps(executor, f"broken {unique('m')} [[fail:500:2]]", "continue")
    body = await wait_finished(executor, ws, tid, eid)
    assert body["status"] == "completed"
    assert [r["status"] for r in body["step_results"]] == ["completed", "failed", "completed"]
    assert "500" in body["step_results"][1]["error"]


async def test_stop_fails_the_run_and_never_starts_later_steps(executor: Running) -> None:
    ws, tid, eid = await three_steps(executor, f"broken {unique('m')} [[fail:500:2]]", "stop")
    body = await wait_finished(executor, ws, tid, eid)
    assert body["status"] == "failed"
    assert "two" in body["error_message"]
    assert [r["status"] for r in body["step_results"]] == ["completed", "failed", "skipped"]
    events = await events_of(executor, eid)
    assert by_type(events, "StepStarted", "three") == []
    assert len(by_type(events, "StepSkipped", "three")) == 1


async def test_step_timeout_fails_the_step(executor: Running) -> None:
    ws, tid, eid = await three_steps(executor, f"slow {unique('m')} [[latency:3000]]", "stop", timeout=0.3)
    body = await wait_finished(executor, ws, tid, eid)
    assert body["status"] == "failed"
    two = body["step_results"][1]
    assert two["status"] == "failed" and two["error_type"] == "timeout"
    assert "timeout" in two["error"]
    # The call the timeout cut had its prompt billed: the step's usage and the run's total hold an estimate.
    usage = [e.payload for e in by_type(await events_of(executor, eid), "StepUsageRecorded", "two")]
    assert [(u["estimated"], u["tokens"]["completion"]) for u in usage] == [(True, 0)]
    assert two["tokens_used"]["prompt"] == usage[0]["tokens"]["prompt"] > 0
    assert body["total_tokens"] == body["step_results"][0]["tokens_used"]["total"] + two["tokens_used"]["total"]


async def test_total_timeout_ends_the_run(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m = unique("m")
    recipe = recipe_snapshot(
        ws,
        [
            step("s1", 1, agent["id"], f"quick {m}"),
            step("s2", 2, agent["id"], f"slow {m} [[latency:8000]]"),
            step("s3", 3, agent["id"], f"never {m}"),
        ],
        execution_config={"total_timeout": 4},
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "failed"
    assert "total_timeout" in body["error_message"]
    statuses = [r["status"] for r in body["step_results"]]
    assert statuses == ["completed", "failed", "skipped"]
    assert body["step_results"][1]["error_type"] == "timeout"


async def test_parallel_steps_all_start_before_any_completes(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(
        ws,
        [step(f"p{i}", i, agent["id"], f"parallel {i} {unique('m')} [[latency:1000]]") for i in range(1, 5)],
        execution_config={"mode": "parallel", "parallel_limit": 4},
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "completed"
    events = await events_of(executor, eid)
    starts = [e.aggregate_version for e in by_type(events, "StepStarted")]
    completions = [e.aggregate_version for e in by_type(events, "StepCompleted")]
    assert len(starts) == 4 and len(completions) == 4
    assert max(starts) < min(completions)


async def test_dag_branches_run_concurrently_and_join_waits(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m = unique("m")
    recipe = recipe_snapshot(
        ws,
        [
            step("root", 1, agent["id"], f"root {m}"),
            step("left", 2, agent["id"], f"left {m} {{steps.root.output}} [[latency:800]]", depends_on=["root"]),
            step("right", 3, agent["id"], f"right {m} [[latency:400]]", depends_on=["root"]),
            step(
                "join", 4, agent["id"], "join {steps.left.output} | {steps.right.output}", depends_on=["left", "right"]
            ),
        ],
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "completed", body
    events = await events_of(executor, eid)

    def version(event_type: str, sid: str) -> int:
        return int(by_type(events, event_type, sid)[0].aggregate_version)

    assert version("StepStarted", "left") < version("StepCompleted", "right")
    assert version("StepStarted", "right") < version("StepCompleted", "left")
    assert version("StepStarted", "join") > max(version("StepCompleted", "left"), version("StepCompleted", "right"))
    join = body["step_results"][3]["output"]
    assert body["step_results"][1]["output"] in join and body["step_results"][2]["output"] in join

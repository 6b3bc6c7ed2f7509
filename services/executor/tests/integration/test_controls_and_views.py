"""Cancel, tools and skills, rerun, isolation and limits, SSE, webhook, cron, replicas and views."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from executor_harness import (
    Running,
    agent_snapshot,
    context_header,
    events_of,
    get_execution,
    recipe_snapshot,
    seed,
    seeded_recipe,
    start,
    step,
    wait_finished,
    wait_for,
)
from sqlalchemy import text

from sous_events.codec import encode, kafka_headers
from sous_events.events.catalog import AgentRegistered, RecipeCreated
from sous_events.registry import make_event, topic_for
from sous_executor.engine.scheduler import CronScheduler
from sous_executor.webhooks.signing import sign
from sous_local.testing import unique

pytestmark = pytest.mark.integration


def types_for(events: list, step_id: str) -> list[str]:
    return [e.event_type for e in events if e.payload.get("step_id") == step_id]


async def test_cancel_during_step_two_never_starts_step_three(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(
        ws,
        [
            step("one", 1, agent["id"], f"one {unique('m')}"),
            step("two", 2, agent["id"], f"two {unique('m')} [[latency:60000]]"),  # far past the cancel grace
            step("three", 3, agent["id"], "three"),
        ],
    )
    await seed(executor, ws, recipe, [agent])
    tid = recipe["template_id"]
    eid = await start(executor, ws, tid)

    async def step_two_started() -> bool:
        return "StepStarted" in types_for(await events_of(executor, eid), "two")

    await wait_for(step_two_started)
    response = await executor.client.post(
        f"/api/workflow-recipes/{tid}/executions/{eid}/cancel", headers=context_header(executor.settings, ws)
    )
    assert response.status_code == 202
    body = await wait_finished(executor, ws, tid, eid)
    assert body["status"] == "cancelled"
    assert [r["status"] for r in body["step_results"]] == ["completed", "cancelled", "skipped"]
    events = await events_of(executor, eid)
    assert "StepStarted" not in types_for(events, "three")
    # The cut call reached the model, which bills its prompt: charged as estimated, never free.
    [cut] = [e.payload for e in events if e.event_type == "StepUsageRecorded" and e.payload["step_id"] == "two"]
    assert cut["estimated"] is True and cut["tokens"]["prompt"] > 0 and cut["tokens"]["completion"] == 0
    assert body["step_results"][1]["tokens_used"]["prompt"] == cut["tokens"]["prompt"]
    assert body["total_tokens"] == sum(r["tokens_used"]["total"] for r in body["step_results"])
    assert [e.event_type for e in events if e.event_type.startswith("Execution")][-2:] == [
        "ExecutionCancelRequested",
        "ExecutionFinished",
    ] or events[-1].payload["status"] == "cancelled"
    again = await executor.client.post(
        f"/api/workflow-recipes/{tid}/executions/{eid}/cancel", headers=context_header(executor.settings, ws)
    )
    assert again.status_code == 409


async def test_tools_in_skills_run_and_tools_outside_are_refused(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws, skills=["calculator", "text_stats"])
    recipe = recipe_snapshot(
        ws,
        [
            step("calc", 1, agent["id"], f'compute {unique("m")} [[tool:calculator {{"expression": "6*7"}}]]'),
            step(
                "sneaky",
                2,
                agent["id"],
                f'{unique("m")} [[tool!:http_get {{"url": "http://example.com"}}]]',
                error_handling="continue",
            ),
            step("bad_args", 3, agent["id"], f'{unique("m")} [[tool:calculator {{"expr": 1}}]]'),
        ],
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "completed", body
    calc, sneaky, bad_args = body["step_results"]
    assert calc["status"] == "completed"
    assert calc["tool_calls"][0]["name"] == "calculator"
    assert calc["tool_calls"][0]["result"]["result"] == 42
    assert "42" in calc["output"]
    assert sneaky["status"] == "failed" and sneaky["error_type"] == "tool_not_allowed"
    assert sneaky["tool_calls"][0]["name"] == "http_get"
    assert "refused" in sneaky["tool_calls"][0]["error"]
    # Invalid arguments are reported back to the model (and recorded), not executed.
    assert bad_args["status"] == "completed"
    assert "invalid arguments" in bad_args["tool_calls"][0]["error"]

    tools = await executor.client.get("/api/tools", headers=context_header(executor.settings, ws))
    names = {t["name"]: t for t in tools.json()["items"]}
    assert {"calculator", "json_extract", "text_stats", "current_time", "http_get"} <= set(names)
    assert names["calculator"]["parameters"]["required"] == ["expression"]


async def test_rerun_reuses_earlier_outputs_without_model_calls(executor: Running, model_server) -> None:  # type: ignore[no-untyped-def]
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m1, m2 = unique("first"), unique("second")
    recipe = recipe_snapshot(
        ws,
        [
            step("one", 1, agent["id"], f"one {m1}"),
            step("two", 2, agent["id"], f"two {m2} after {{steps.one.output}}"),
        ],
    )
    await seed(executor, ws, recipe, [agent])
    tid = recipe["template_id"]
    first = await wait_finished(executor, ws, tid, await start(executor, ws, tid))
    assert first["status"] == "completed"
    override = unique("override")
    response = await executor.client.post(
        f"/api/workflow-recipes/{tid}/executions/{first['execution_id']}/rerun",
        json={"from_step": "two", "step_overrides": {"two": {"prompt_template": f"{override} {{steps.one.output}}"}}},
        headers=context_header(executor.settings, ws),
    )
    assert response.status_code == 202, response.text
    second = await wait_finished(executor, ws, tid, response.json()["recipe_execution_id"])
    assert second["status"] == "completed"
    one, two = second["step_results"]
    assert one["output"] == first["step_results"][0]["output"]
    assert one["tokens_used"]["total"] == 0 and one.get("reused") is True
    assert override in two["output"] and one["output"] in two["output"]
    # Step one's prompt reached the model once (first run); the other calls carrying m1 are the two step-two
    # prompts that embed its output (first run: with m2, rerun: with the override).
    assert await model_server.calls(override) == 1
    assert await model_server.calls(m2) == 1
    assert await model_server.calls(m1) - 2 == 1
    assert second["triggered_by"] == "rerun"
    assert second["execution_metadata"]["rerun_of"] == first["execution_id"]


async def test_inputs_validation_isolation_and_concurrency_limit(executor: Running) -> None:
    ws, other = unique("ws"), unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(
        ws,
        [step("slow", 1, agent["id"], f"{{input.n}} {unique('m')} [[latency:5000]]")],
        inputs={"n": {"type": "integer", "required": True}, "tone": {"type": "string", "default": "dry"}},
    )
    await seed(executor, ws, recipe, [agent])
    tid = recipe["template_id"]
    headers = context_header(executor.settings, ws)
    url = f"/api/workflow-recipes/{tid}/execute"
    missing = await executor.client.post(url, json={"input_data": {}}, headers=headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "input_data.n"
    wrong = await executor.client.post(url, json={"input_data": {"n": "three"}}, headers=headers)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["type"] == "type_error"
    unknown = await executor.client.post("/api/workflow-recipes/nope/execute", json={}, headers=headers)
    assert unknown.status_code == 404

    executor.settings.max_concurrent_executions_per_workspace = 2
    eids = [await start(executor, ws, tid, {"n": i}) for i in (1, 2)]
    limited = await executor.client.post(url, json={"input_data": {"n": 3}}, headers=headers)
    assert limited.status_code == 429
    assert limited.json()["code"] == "concurrency_limit"
    assert limited.json()["limits"]["max_concurrent_executions"] == 2
    first = await get_execution(executor, ws, tid, eids[0])
    assert first["input_data"] == {"n": 1, "tone": "dry"}

    other_headers = context_header(executor.settings, other)
    base = f"/api/workflow-recipes/{tid}/executions"
    for method, path in [
        ("GET", f"{base}/{eids[0]}"),
        ("POST", f"{base}/{eids[0]}/cancel"),
        ("POST", f"{base}/{eids[0]}/rerun"),
        ("GET", f"{base}/{eids[0]}/events"),
        ("POST", url),
    ]:
        response = await executor.client.request(method, path, headers=other_headers, json={})
        assert response.status_code == 404, (method, path, response.status_code)
    listed = await executor.client.get(base, headers=other_headers)
    assert listed.status_code == 404 or listed.json()["total"] == 0
    active_other = (await executor.client.get("/api/workflows/active", headers=other_headers)).json()
    assert active_other["total_active"] == 0 and active_other["recipe_runs"] == []
    dash_other = (await executor.client.get("/api/workflows/stats/dashboard", headers=other_headers)).json()
    assert dash_other["overview"]["total_executions"] == 0

    active = (await executor.client.get("/api/workflows/active", headers=headers)).json()
    assert {r["execution_id"] for r in active["active_workflows"]} == set(eids)
    assert active["system_load"]["limit"] == 2
    listed_own = (await executor.client.get(base, params={"status": "running", "limit": 1}, headers=headers)).json()
    assert listed_own["limit"] == 1 and listed_own["recipe_quality_score"] == 0.5
    for eid in eids:
        await executor.client.post(f"{base}/{eid}/cancel", headers=headers)
    for eid in eids:
        assert (await wait_finished(executor, ws, tid, eid))["status"] == "cancelled"
    dash = (await executor.client.get("/api/workflows/stats/dashboard", headers=headers)).json()
    assert dash["overview"]["total_executions"] == 2 and dash["overview"]["cancelled_executions"] == 2
    assert len(dash["execution_trends"]) == 30 and dash["execution_trends"][-1]["cancelled"] == 2
    done = (await executor.client.get("/api/workflows/active", headers=headers)).json()
    assert done["total_active"] == 0 and all(r["status"] == "cancelled" for r in done["recipe_runs"])


async def test_sse_streams_events_live_and_resumes_after_last_event_id(executor: Running) -> None:
    ws, tid = await seeded_recipe(executor, {"a": f"a {unique('m')} [[latency:300]]", "b": "b"})
    eid = await start(executor, ws, tid)
    path = f"/api/workflow-recipes/{tid}/executions/{eid}/events"
    headers = context_header(executor.settings, ws)
    async with executor.client.stream("GET", path, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = await sse_frames(response)
    assert frames[0]["event"] == "ExecutionRequested"
    assert frames[-1]["event"] == "ExecutionFinished"
    assert [int(f["id"]) for f in frames] == list(range(1, len(frames) + 1))
    assert json.loads(frames[-1]["data"])["payload"]["status"] == "completed"
    # Each event goes out as JSON text never decoded and encoded again: the store's, or (for the events of a run
    # this instance drives, handed over as they commit) the text that was appended. Either is the stored event.
    async with executor.executor.service.sessions() as session:
        stored = await session.execute(
            text("SELECT envelope::text FROM event_store WHERE aggregate_id = :e ORDER BY aggregate_version"),
            {"e": eid},
        )
        assert [json.loads(f["data"]) for f in frames] == [json.loads(t) for t in stored.scalars()]
    resumed = await executor.client.get(path, headers={**headers, "Last-Event-ID": str(len(frames) - 2)})
    ids = [line.split(": ")[1] for line in resumed.text.splitlines() if line.startswith("id: ")]
    assert ids == [str(len(frames) - 1), str(len(frames))]


async def sse_frames(response: httpx.Response) -> list[dict[str, str]]:
    frames: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "event" in current:
                frames.append(current)
            current = {}
            continue
        key, _, value = line.partition(": ")
        current[key] = value
    return frames


async def test_an_execute_asking_for_an_event_stream_is_answered_with_the_runs_live_events(executor: Running) -> None:
    ws, tid = await seeded_recipe(executor, {"a": f"a {unique('m')} [[latency:200]]", "b": "b"})
    headers = {**context_header(executor.settings, ws), "Accept": "text/event-stream", "Idempotency-Key": unique("k")}
    url = f"/api/workflow-recipes/{tid}/execute"
    async with executor.client.stream("POST", url, json={"input_data": {}}, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        eid = response.headers["x-execution-id"]
        assert response.headers["location"] == f"/api/workflow-recipes/{tid}/executions/{eid}"
        assert "idempotent-replayed" not in response.headers
        frames = await sse_frames(response)
    assert [f["event"] for f in frames][:2] == ["ExecutionRequested", "ExecutionStarted"]
    assert frames[-1]["event"] == "ExecutionFinished"
    assert [int(f["id"]) for f in frames] == list(range(1, len(frames) + 1))
    finished = json.loads(frames[-1]["data"])
    assert finished["aggregate_id"] == eid and finished["payload"]["status"] == "completed"
    # The same request again starts nothing: it follows the run it started, now finished, from its first event.
    async with executor.client.stream("POST", url, json={"input_data": {}}, headers=headers) as replay:
        assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
        assert replay.headers["x-execution-id"] == eid
        assert [f["id"] for f in await sse_frames(replay)] == [f["id"] for f in frames]
    plain = await executor.client.post(url, json={"input_data": {}}, headers=context_header(executor.settings, ws))
    assert plain.status_code == 202 and plain.json()["recipe_execution_id"] != eid
    # A refused start is the JSON error it always was, whatever the caller accepts.
    streaming = {**context_header(executor.settings, ws), "Accept": "text/event-stream"}
    missing = await executor.client.post(f"/api/workflow-recipes/{unique('none')}/execute", json={}, headers=streaming)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    invalid = await executor.client.post(url, json={"input_data": "x"}, headers=streaming)
    assert invalid.status_code == 422 and invalid.headers["content-type"].startswith("application/json")


async def test_webhook_requires_a_standard_webhooks_signature(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    await executor.executor.secrets.put(ws, "hook-secret", "s3cret", "tester")
    webhook_id = unique("hook")
    recipe = recipe_snapshot(
        ws,
        [step("a", 1, agent["id"], "hello {input.who}")],
        schedule_config={"type": "webhook", "webhook_id": webhook_id, "webhook_secret": "hook-secret"},
    )
    await seed(executor, ws, recipe, [agent])
    system = context_header(executor.settings, "", auth_type="system")
    body = json.dumps({"who": "webhook"}).encode()
    url = f"/api/webhooks/recipe/{webhook_id}"
    unsigned = await executor.client.post(url, content=body, headers=system)
    assert unsigned.status_code == 401
    forged = sign("not-the-secret", unique("msg"), body)
    assert (await executor.client.post(url, content=body, headers={**system, **forged})).status_code == 401
    ok = await executor.client.post(url, content=body, headers={**system, **sign("s3cret", unique("msg"), body)})
    assert ok.status_code == 202, ok.text
    done = await wait_finished(executor, ws, recipe["template_id"], ok.json()["recipe_execution_id"])
    assert done["triggered_by"] == "webhook" and "hello webhook" in done["step_results"][0]["output"]
    missing = await executor.client.post("/api/webhooks/recipe/none", content=body, headers=system)
    assert missing.status_code == 404


async def test_cron_due_run_starts_once_across_instances(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(
        ws,
        [step("a", 1, agent["id"], f"cron {unique('m')}")],
        schedule_config={"type": "cron", "cron_expression": "* * * * *"},
    )
    await seed(executor, ws, recipe, [agent])
    service = executor.executor.service
    instances = [CronScheduler(service, 3600), CronScheduler(service, 3600)]
    # A tick in the next minute: its due time is after the recipe was replicated, so it must run once.
    now = datetime.now(UTC).replace(second=10, microsecond=0) + timedelta(minutes=1)
    started = await asyncio.gather(*(s.tick(now) for s in instances), *(s.tick(now) for s in instances))
    all_started = [eid for batch in started for eid in batch]
    assert len(all_started) == 1
    assert await instances[0].tick(now) == []
    done = await wait_finished(executor, ws, recipe["template_id"], all_started[0])
    assert done["status"] == "completed" and done["triggered_by"] == "cron"


async def test_replicas_follow_catalog_events_on_the_broker(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(ws, [step("a", 1, agent["id"], f"replicated {unique('m')}")])
    producer = AIOKafkaProducer(bootstrap_servers=executor.settings.kafka_bootstrap)
    await producer.start()
    try:
        for payload, aggregate in (
            (AgentRegistered(agent=agent), agent["id"]),
            (RecipeCreated(recipe=recipe), recipe["id"]),
        ):
            envelope = make_event(
                payload, producer="catalog", workspace_id=ws, aggregate_id=aggregate, aggregate_version=1
            )
            await producer.send_and_wait(
                topic_for(envelope.event_type),
                value=encode(envelope),
                key=aggregate.encode(),
                headers=kafka_headers(envelope),
            )
    finally:
        await producer.stop()
    headers = context_header(executor.settings, ws)

    async def replicated() -> bool:
        response = await executor.client.get(
            f"/api/workflow-recipes/{recipe['template_id']}/executions", headers=headers
        )
        return response.status_code == 200

    await wait_for(replicated, within=60, interval=0.2)
    eid = await start(executor, ws, recipe["template_id"])
    assert (await wait_finished(executor, ws, recipe["template_id"], eid))["status"] == "completed"

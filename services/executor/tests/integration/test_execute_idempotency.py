"""An execute request's Idempotency-Key: a client that retries (a timeout, a lost answer) never starts, nor pays
for, the execution (or workflow run) twice, across instances; the same key for another request is refused, and a refused start
does not use the key up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from executor_harness import (
    ModelServer,
    Running,
    agent_snapshot,
    context_header,
    executor_settings,
    recipe_snapshot,
    running_executor,
    seed,
    step,
    wait_finished,
)
from sqlalchemy import func, select, update

from sous_executor.adapters.tables import execute_keys, executions
from sous_executor.workflows.runner import WorkflowTimings
from sous_executor.workflows.tables import workflow_runs
from sous_local.testing import Infrastructure, unique

pytestmark = pytest.mark.integration

REPEATS = 6


async def execute(running: Running, ws: str, template_id: str, key: str | None, **body: Any) -> httpx.Response:
    headers = context_header(running.settings, ws)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await running.client.post(f"/api/workflow-recipes/{template_id}/execute", json=body, headers=headers)


async def executions_of(running: Running, ws: str) -> list[str]:
    async with running.executor.service.sessions() as session:
        query = select(executions.c.execution_id).where(executions.c.workspace_id == ws)
        return [row.execution_id for row in await session.execute(query)]


async def seeded(running: Running, ws: str, prompt: str = "answer briefly") -> str:
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(ws, [step("only", 1, agent["id"], prompt)])
    await seed(running, ws, recipe, [agent])
    return str(recipe["template_id"])


async def test_repeats_of_a_keyed_request_on_two_instances_start_one_execution(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    ws = unique("ws")
    settings = [executor_settings(fresh_database, infra.kafka_bootstrap, model_server) for _ in range(2)]
    async with running_executor(settings[0]) as first, running_executor(settings[1]) as second:
        tid = await seeded(first, ws)
        key = unique("key")

        answers = await asyncio.gather(
            *(execute((first, second)[i % 2], ws, tid, key, input_data={}) for i in range(REPEATS))
        )

        assert [a.status_code for a in answers] == [202] * REPEATS, [a.text for a in answers]
        started = {a.json()["execution_id"] for a in answers}
        assert len(started) == 1
        replayed = [a for a in answers if a.json()["replayed"]]
        assert len(replayed) == REPEATS - 1
        assert all(a.headers.get("Idempotent-Replayed") == "true" for a in replayed)
        assert await executions_of(first, ws) == list(started)
        finished = await wait_finished(first, ws, tid, started.pop())
        assert finished["status"] == "completed"

        # After the run: a repeat answers with the finished execution, still without starting another.
        again = await execute(second, ws, tid, key, input_data={})
        assert again.status_code == 202 and again.json()["status"] == "completed" and again.json()["replayed"]
        # Without a key, every request is a new execution.
        fresh = [await execute(first, ws, tid, None) for _ in range(2)]
        assert len({a.json()["execution_id"] for a in fresh}) == 2
        assert len(await executions_of(first, ws)) == 3


async def test_a_key_used_for_another_request_is_refused_with_its_field(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    ws = unique("ws")
    async with running_executor(executor_settings(fresh_database, infra.kafka_bootstrap, model_server)) as running:
        tid, other = await seeded(running, ws), await seeded(running, ws)
        key = unique("key")
        assert (await execute(running, ws, tid, key)).status_code == 202

        reused = await execute(running, ws, other, key)

        assert reused.status_code == 422
        body = reused.json()
        assert body["errors"][0]["field"] == "Idempotency-Key"
        assert body["errors"][0]["type"] == "idempotency_key_reused"
        assert len(await executions_of(running, ws)) == 1

        for bad in ("", "has space", "x" * 256):
            refused = await execute(running, ws, tid, bad)
            assert refused.status_code == 422, bad
            assert refused.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_a_start_refused_at_the_concurrency_limit_leaves_its_key_unused(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    ws = unique("ws")
    settings = executor_settings(
        fresh_database, infra.kafka_bootstrap, model_server, max_concurrent_executions_per_workspace=1
    )
    async with running_executor(settings) as running:
        slow = await seeded(running, ws, f"wait {unique('slow')} [[latency:60000]]")
        quick = await seeded(running, ws)
        blocking = (await execute(running, ws, slow, None)).json()["execution_id"]
        key = unique("key")

        refused = await execute(running, ws, quick, key)
        assert refused.status_code == 429

        cancel = f"/api/workflow-recipes/{slow}/executions/{blocking}/cancel"
        await running.client.post(cancel, headers=context_header(settings, ws))
        assert (await wait_finished(running, ws, slow, blocking))["status"] == "cancelled"
        retried = await execute(running, ws, quick, key)

        assert retried.status_code == 202 and retried.json()["replayed"] is False
        assert (await wait_finished(running, ws, quick, retried.json()["execution_id"]))["status"] == "completed"


async def test_a_key_older_than_its_lifetime_starts_a_new_execution_and_old_keys_are_purged(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    ws = unique("ws")
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server, idempotency_key_ttl_s=3600)
    async with running_executor(settings) as running:
        tid = await seeded(running, ws)
        key, forgotten = unique("key"), unique("key")
        first = (await execute(running, ws, tid, key)).json()["execution_id"]
        assert (await execute(running, ws, tid, forgotten)).status_code == 202
        async with running.executor.service.sessions() as session, session.begin():
            await session.execute(
                update(execute_keys)
                .where(execute_keys.c.workspace_id == ws)
                .values(created_at=datetime.now(UTC) - timedelta(hours=2))
            )

        later = await execute(running, ws, tid, key)

        assert later.status_code == 202 and not later.json()["replayed"]
        assert later.json()["execution_id"] != first
        async with running.executor.service.sessions() as session:
            keys = select(func.count()).where(execute_keys.c.workspace_id == ws)
            assert (await session.execute(keys)).scalar_one() == 1  # the expired `forgotten` went


async def test_repeats_of_a_keyed_workflow_run_start_one_run_and_keys_do_not_cross_targets(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    ws = unique("ws")
    async with running_executor(executor_settings(fresh_database, infra.kafka_bootstrap, model_server)) as running:
        running.app.state.workflows.runner.timings = WorkflowTimings(quality_wait_s=0.3, poll_s=0.05)
        tid = await seeded(running, ws)
        headers = context_header(running.settings, ws)
        created = await running.client.post(
            "/api/workflows", json={"name": "Once", "task_template": "Do it"}, headers=headers
        )
        workflow_id = created.json()["workflow"]["id"]
        key = unique("key")
        run_path = f"/api/workflows/{workflow_id}/execute"

        answers = await asyncio.gather(
            *(running.client.post(run_path, json={}, headers={**headers, "Idempotency-Key": key}) for _ in range(3))
        )

        assert [a.status_code for a in answers] == [202] * 3, [a.text for a in answers]
        assert len({a.json()["run_id"] for a in answers}) == 1
        assert sorted(a.json()["replayed"] for a in answers) == [False, True, True]
        async with running.executor.service.sessions() as session:
            runs = select(func.count()).where(workflow_runs.c.workspace_id == ws)
            assert (await session.execute(runs)).scalar_one() == 1
        # The workflow's key is not a recipe's: the same key on an execute is another request.
        crossed = await execute(running, ws, tid, key)
        assert crossed.status_code == 422 and crossed.json()["errors"][0]["field"] == "Idempotency-Key"

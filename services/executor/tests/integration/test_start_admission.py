"""Starts of one workspace overlap, across instances, and are still admitted exactly up to the workspace's limits.

Every start is held inside its open transaction (after it wrote its execution's events and claimed its lease)
until all of them are there at once: starts that took turns for their whole transaction would never all arrive.
Then they are let go together, and the counts taken under the workspace's lock at their commit admit exactly
as many as the limit allows. Nothing of a refused start is left: its commit failed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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
    start,
    step,
    wait_finished,
)
from sqlalchemy import func, select, text

from sous_executor import handlers
from sous_executor.adapters.admission import Admission
from sous_executor.adapters.admission import insert_sql as admission_sql
from sous_executor.adapters.repositories import ACTIVE_STATUSES
from sous_executor.adapters.tables import executions
from sous_local.testing import Infrastructure, unique
from sous_service.domain_errors import RateLimited

pytestmark = pytest.mark.integration

STARTS = 6
# Bounds a start that never reaches the others (they took turns): the test then fails instead of hanging.
DEADLOCK_GUARD_S = 120


@asynccontextmanager
async def two_instances(
    infra: Infrastructure, database: str, model: ModelServer, **overrides: Any
) -> AsyncIterator[list[Running]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                running_executor(executor_settings(database, infra.kafka_bootstrap, model, **overrides))
            )
            for _ in range(2)
        ]


def held_until_all_arrive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each start waits at the last point before its admission until every start is there: inside its
    transaction, after writing its run (events, lease, read-model row, admission row) and before the commit;
    or, for a start whose statement commits on its own (no idempotency key), just before that statement."""
    barrier = asyncio.Barrier(STARTS)
    append = handlers.append_requested

    async def held(*args: Any, **kwargs: Any) -> None:
        if kwargs.get("alone_on") is not None:
            await barrier.wait()
            await append(*args, **kwargs)
            return
        await append(*args, **kwargs)
        await barrier.wait()

    monkeypatch.setattr(handlers, "append_requested", held)


async def start_all_at_once(
    instances: list[Running], ws: str, template_id: str, monkeypatch: pytest.MonkeyPatch, *, keyed: bool = False
) -> tuple[list[str], list[dict[str, Any]]]:
    """STARTS starts over both instances, all at their admission at once: (admitted ids, refusals). `keyed`:
    each under an Idempotency-Key, so each in a transaction that also writes its key."""
    held_until_all_arrive(monkeypatch)
    url = f"/api/workflow-recipes/{template_id}/execute"

    async def one(index: int) -> httpx.Response:
        instance = instances[index % len(instances)]
        headers = context_header(instance.settings, ws)
        if keyed:
            headers["Idempotency-Key"] = unique("start")
        return await instance.client.post(url, json={}, headers=headers)

    async with asyncio.timeout(DEADLOCK_GUARD_S):
        responses = await asyncio.gather(*(one(i) for i in range(STARTS)))
    monkeypatch.undo()
    admitted = [r.json()["execution_id"] for r in responses if r.status_code == 202]
    return admitted, [r.json() for r in responses if r.status_code != 202]


async def active_in(instance: Running, ws: str) -> int:
    async with instance.executor.service.sessions() as session:
        query = select(func.count()).where(executions.c.workspace_id == ws, executions.c.status.in_(ACTIVE_STATUSES))
        return int((await session.execute(query)).scalar_one())


async def admission_rows(instance: Running) -> int:
    async with instance.executor.service.sessions() as session:
        return int((await session.execute(text("SELECT count(*) FROM start_admissions"))).scalar_one())


async def cancel_all(instance: Running, ws: str, template_id: str, eids: list[str]) -> None:
    headers = context_header(instance.settings, ws)
    for eid in eids:
        await instance.client.post(f"/api/workflow-recipes/{template_id}/executions/{eid}/cancel", headers=headers)
    for eid in eids:
        assert (await wait_finished(instance, ws, template_id, eid))["status"] == "cancelled"


async def seeded(instance: Running, ws: str) -> dict[str, Any]:
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(ws, [step("slow", 1, agent["id"], f"wait {unique('admit')} [[latency:60000]]")])
    await seed(instance, ws, recipe, [agent])
    return recipe


@pytest.mark.parametrize("keyed", [False, True], ids=["statements", "transactions"])
async def test_concurrent_starts_of_a_workspace_overlap_and_are_admitted_up_to_its_limit(
    infra: Infrastructure,
    fresh_database: str,
    model_server: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
    keyed: bool,
) -> None:
    ws = unique("ws")
    async with two_instances(
        infra, fresh_database, model_server, max_concurrent_executions_per_workspace=3
    ) as instances:
        recipe = await seeded(instances[0], ws)
        tid = recipe["template_id"]

        admitted, refused = await start_all_at_once(instances, ws, tid, monkeypatch, keyed=keyed)

        assert len(admitted) == 3, refused
        assert all(body["code"] == "concurrency_limit" for body in refused) and len(refused) == STARTS - 3
        assert refused[0]["limits"] == {"max_concurrent_executions": 3, "active_executions": 3}
        assert await active_in(instances[0], ws) == 3
        assert await admission_rows(instances[0]) == 0  # the trigger takes its row away, refused or not

        # Finished runs give their slots back: the next start is admitted.
        await cancel_all(instances[0], ws, tid, admitted)
        await cancel_all(instances[0], ws, tid, [await start(instances[1], ws, tid)])


async def test_concurrent_starts_of_a_workspace_are_admitted_up_to_its_runs_per_day(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = unique("ws")
    quotas = json.dumps({ws: {"runs_per_day": 2}})
    async with two_instances(infra, fresh_database, model_server, workspace_quotas=quotas) as instances:
        recipe = await seeded(instances[0], ws)
        tid = recipe["template_id"]

        admitted, refused = await start_all_at_once(instances, ws, tid, monkeypatch)

        assert len(admitted) == 2, refused
        assert all(body["code"] == "quota_exceeded" for body in refused) and len(refused) == STARTS - 2
        assert refused[0]["limits"] == {"runs_per_day": 2, "runs_today": 2}

        # Runs per day do not come back when the runs finish.
        await cancel_all(instances[0], ws, tid, admitted)
        late = await instances[1].client.post(
            f"/api/workflow-recipes/{tid}/execute", json={}, headers=context_header(instances[1].settings, ws)
        )
        assert late.status_code == 429 and late.json()["code"] == "quota_exceeded"


async def test_a_refusal_at_any_commit_of_the_executor_is_a_rate_limit(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    """Not only a request's unit of work: a workflow's stage commits a start in a transaction of its own, and
    is told the same 429 (it then waits for a slot)."""
    ws = unique("ws")
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server)
    async with running_executor(settings) as instance:
        admission = Admission(ws, max_active=-1, runs_per_day=0, since=None, active_statuses=ACTIVE_STATUSES)
        sql = "WITH " + admission_sql(1).removesuffix(", ") + " SELECT 1"
        async with instance.executor.service.sessions() as session:
            with pytest.raises(RateLimited) as refused:
                async with session.begin():
                    connection = await session.connection()
                    await connection.exec_driver_sql(sql, tuple(admission.parameters(unique("exec"))))
        assert refused.value.code == "concurrency_limit"
        assert refused.value.extra["limits"] == {"max_concurrent_executions": -1, "active_executions": -1}
        assert await admission_rows(instance) == 0

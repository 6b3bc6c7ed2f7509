"""Catalog replicas never go back in time; a full instance leaves new requests waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from executor_harness import (
    ModelServer,
    Running,
    agent_snapshot,
    context_header,
    events_of,
    executor_settings,
    free_port,
    recipe_snapshot,
    running_executor,
    seed,
    start,
    step,
    wait_finished,
    wait_for,
)
from fastapi import FastAPI
from sqlalchemy import func, select

from sous_events.envelope import EventPayload
from sous_events.events.catalog import AgentRemoved, AgentUpdated, RecipeDeleted
from sous_events.registry import make_event
from sous_events.tables import inbox
from sous_executor.adapters import repositories as repo
from sous_executor.adapters.tables import executions, leases
from sous_executor.entrypoints.consumers import RUNNERS_GROUP, replica_consumer
from sous_local.testing import Infrastructure, unique

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def stale_catalog(recipe: dict[str, Any], agent: dict[str, Any]) -> AsyncIterator[str]:
    """A catalog that answers with copies taken before they changed (a slow read racing a delete)."""
    app = FastAPI()

    @app.get("/api/workflow-recipes/{template_id}")
    async def get_recipe(template_id: str) -> dict[str, Any]:
        return recipe

    @app.get("/api/agents/{agent_id}")
    async def get_agent(agent_id: str) -> dict[str, Any]:
        return agent

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await wait_for(started, within=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def apply(running: Running, workspace_id: str, payload: EventPayload, aggregate_id: str, version: int) -> None:
    service = running.executor.service
    envelope = make_event(
        payload, producer="catalog", workspace_id=workspace_id, aggregate_id=aggregate_id, aggregate_version=version
    )
    async with service.sessions() as session, session.begin():
        await replica_consumer(service).dispatch()(session, envelope)


async def test_a_stale_catalog_answer_brings_back_no_deleted_recipe_and_no_old_agent(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws, revision=2)
    recipe = recipe_snapshot(ws, [step("one", 1, agent["id"], "hello")])
    async with stale_catalog(recipe, agent) as catalog_url:
        settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server, catalog_url=catalog_url)
        async with running_executor(settings) as running:
            await seed(running, ws, recipe, [agent])
            service = running.executor.service
            newer = {**agent, "revision": 3, "description": "newer"}
            await apply(running, ws, AgentUpdated(agent=newer), agent["id"], 3)
            # An older copy arriving late (a replayed event) does not roll the agent back.
            await apply(running, ws, AgentUpdated(agent={**agent, "description": "older"}), agent["id"], 2)
            async with service.sessions() as session:
                stored = await repo.get_agents(session, ws, [agent["id"]])
            assert stored[agent["id"]]["description"] == "newer"

            await apply(
                running, ws, RecipeDeleted(recipe_id=recipe["id"], template_id=recipe["template_id"]), recipe["id"], 2
            )
            response = await running.client.post(
                f"/api/workflow-recipes/{recipe['template_id']}/execute",
                json={"input_data": {}},
                headers=context_header(settings, ws),
            )
            assert response.status_code == 404, response.text
            async with service.sessions() as session:
                assert await repo.get_recipe(session, ws, recipe["template_id"]) is None

            await apply(running, ws, AgentRemoved(agent_id=agent["id"]), agent["id"], 4)
            assert await service.load_agents(ws, recipe) == {}

            # A recipe re-created under the same template_id (a new id) is a new recipe: it is stored.
            again = recipe_snapshot(ws, [step("one", 1, agent["id"], "again")], template_id=recipe["template_id"])
            await seed(running, ws, again, [])
            async with service.sessions() as session:
                assert (await repo.get_recipe(session, ws, recipe["template_id"]) or {}).get("id") == again["id"]


async def test_a_full_instance_leaves_new_requests_waiting(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    cap, more = 2, 3
    settings = executor_settings(
        fresh_database,
        infra.kafka_bootstrap,
        model_server,
        max_inflight=cap,
        pending_claim_grace_s=1.0,
        cancel_grace_s=0.0,
    )
    async with running_executor(settings) as running:
        ws = unique("ws")
        agent = agent_snapshot(ws)
        m = unique("cap")
        recipe = recipe_snapshot(ws, [step("slow", 1, agent["id"], f"wait {m} [[latency:60000]]")])
        await seed(running, ws, recipe, [agent])
        eids = [await start(running, ws, recipe["template_id"]) for _ in range(cap + more)]
        service = running.executor.service

        (runners,) = [c for c in running.executor.runtime.consumers if c.name == RUNNERS_GROUP]

        async def all_consumed() -> bool:
            # The requests claimed on accept are passed over; the others are claimed in the inbox (or not).
            async with service.sessions() as session:
                seen = await session.scalar(
                    select(func.count()).select_from(inbox).where(inbox.c.consumer == RUNNERS_GROUP)
                )
            return int(seen or 0) + runners.passed_over >= cap + more

        await wait_for(all_consumed, within=180)
        async with service.sessions() as session:
            claimed = await session.scalar(select(func.count()).select_from(leases))
            pending = await session.scalar(
                select(func.count()).select_from(executions).where(executions.c.status == "pending")
            )
        assert claimed == cap and pending == more
        assert running.executor.engine.active <= cap
        # Cancelling frees the slots; the waiting runs are then taken, a slot at a time, and end cancelled.
        for eid in eids:
            response = await running.client.post(
                f"/api/workflow-recipes/{recipe['template_id']}/executions/{eid}/cancel",
                headers=context_header(settings, ws),
            )
            assert response.status_code == 202, response.text
        bodies = [await wait_finished(running, ws, recipe["template_id"], eid, within=120) for eid in eids]
        assert all(b["status"] == "cancelled" for b in bodies)
        spans = []
        for eid in eids:
            events = await events_of(running, eid)
            began = next(e.occurred_at for e in events if e.event_type == "ExecutionStarted")
            ended = next(e.occurred_at for e in events if e.event_type == "ExecutionFinished")
            spans.append((began, ended))
        most = max(sum(1 for b, e in spans if b <= moment < e) for moment, _ in spans)
        assert most <= cap

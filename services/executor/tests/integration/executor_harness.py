"""Helpers for the executor's integration tests: the offline model server, the app, seeding, waiting."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from sous_events.envelope import Envelope
from sous_events.events.catalog import AgentRegistered, RecipeCreated
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_executor.bootstrap import MIGRATIONS_DIR, build_app
from sous_executor.config import ExecutorSettings
from sous_executor.entrypoints.consumers import replica_consumer
from sous_local.testing import unique
from sous_service.internal_client import rebind_hook
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context
from sous_service.migrate import upgrade_async


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModelServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sous_local.model_server", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the offline model server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                # A request still sleeping in a latency directive holds a graceful shutdown open.
                self.proc.kill()
                self.proc.wait(10)

    async def calls(self, contains: str) -> int:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.url}/_sous/calls", params={"contains": contains})
        return int(response.json()["count"])


def executor_settings(database_url: str, kafka: str, model: ModelServer, **overrides: Any) -> ExecutorSettings:
    url = make_url(database_url)
    values: dict[str, Any] = {
        "env": "test",
        "database_url": url.set(database="postgres").render_as_string(hide_password=False),
        "database_name": url.database,
        "database_pool_size": 5,
        "kafka_bootstrap": kafka,
        "kafka_partitions": 2,
        "model_base_url": f"{model.url}/v1",
        "lease_ttl_s": 2.0,
        "heartbeat_interval_s": 0.5,
        "sweeper_interval_s": 0.5,
        "cancel_poll_s": 0.2,
        "sse_poll_s": 0.05,
        "scheduler_interval_s": 3600.0,
        "catalog_url": "",
        "quality_url": "",
        "runner_id": unique("runner"),
    }
    values.update(overrides)
    return ExecutorSettings(**values)


@dataclass
class Running:
    app: FastAPI
    settings: ExecutorSettings
    client: httpx.AsyncClient

    @property
    def executor(self) -> Any:
        return self.app.state.executor


@asynccontextmanager
async def running_executor(settings: ExecutorSettings, *, migrate: bool = True) -> AsyncIterator[Running]:
    if migrate:
        await upgrade_async(settings, MIGRATIONS_DIR)
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://executor",
            timeout=30,
            event_hooks={"request": [rebind_hook(settings.internal_secret, "executor")]},
        ) as client:
            yield Running(app, settings, client)


def context_header(settings: ExecutorSettings, workspace_id: str, auth_type: str = "jwt") -> dict[str, str]:
    ctx = InternalContext(workspace_id=workspace_id, user_id="tester", scopes=("*",), auth_type=auth_type)  # type: ignore[arg-type]
    return {CONTEXT_HEADER: sign_context(ctx, settings.internal_secret)}


def agent_snapshot(
    workspace_id: str, *, name: str | None = None, skills: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    agent_name = name or unique("agent")
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "name": agent_name,
        "description": f"test agent {agent_name}",
        "model_config": {"provider": "offline", "model_id": "gpt-4o-mini"},
        "skills": skills or [],
        "configuration": {"max_iterations": 5},
        "status": "active",
        **extra,
    }


def recipe_snapshot(
    workspace_id: str,
    steps: list[dict[str, Any]],
    *,
    execution_config: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    schedule_config: dict[str, Any] | None = None,
    template_id: str | None = None,
) -> dict[str, Any]:
    tid = template_id or unique("recipe")
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "template_id": tid,
        "name": f"Recipe {tid}",
        "description": "integration test recipe",
        "template_definition": {},
        "steps": steps,
        "inputs": inputs or {},
        "outputs": {},
        "execution_config": {
            "mode": "sequential",
            "max_retries": 1,
            "retry_delay": 0.1,
            "max_retry_delay": 5,
            "timeout_per_step": 30,
            "total_timeout": 60,
            **(execution_config or {}),
        },
        "schedule_config": schedule_config or {"type": "manual"},
        "quality_score": 0.5,
        "revision": 1,
    }


def step(step_id: str, order: int, agent_id: str, prompt: str, **extra: Any) -> dict[str, Any]:
    return {"step_id": step_id, "order": order, "agent_id": agent_id, "prompt_template": prompt, **extra}


async def seed(running: Running, workspace_id: str, recipe: dict[str, Any], agents: list[dict[str, Any]]) -> None:
    """Insert replicas through the replica handler (the same code the catalog consumer runs)."""
    service = running.executor.service
    envelopes: list[Envelope] = [
        make_event(
            AgentRegistered(agent=a),
            producer="catalog",
            workspace_id=workspace_id,
            aggregate_id=a["id"],
            aggregate_version=1,
        )
        for a in agents
    ]
    envelopes.append(
        make_event(
            RecipeCreated(recipe=recipe),
            producer="catalog",
            workspace_id=workspace_id,
            aggregate_id=recipe["id"],
            aggregate_version=1,
        )
    )
    async with service.sessions() as session, session.begin():
        for envelope in envelopes:
            await replica_consumer(service).dispatch()(session, envelope)


async def seeded_recipe(running: Running, prompts: dict[str, str]) -> tuple[str, str]:
    """(workspace, template id) of a new workspace's recipe: one step per (step id, prompt), in that order, all
    run by the workspace's one agent."""
    workspace_id = unique("ws")
    agent = agent_snapshot(workspace_id)
    steps = [step(step_id, order, agent["id"], prompt) for order, (step_id, prompt) in enumerate(prompts.items(), 1)]
    recipe = recipe_snapshot(workspace_id, steps)
    await seed(running, workspace_id, recipe, [agent])
    return workspace_id, str(recipe["template_id"])


async def start(running: Running, workspace_id: str, template_id: str, input_data: dict[str, Any] | None = None) -> str:
    response = await running.client.post(
        f"/api/workflow-recipes/{template_id}/execute",
        json={"input_data": input_data or {}},
        headers=context_header(running.settings, workspace_id),
    )
    assert response.status_code == 202, response.text
    return str(response.json()["recipe_execution_id"])


async def get_execution(running: Running, workspace_id: str, template_id: str, eid: str) -> dict[str, Any]:
    response = await running.client.get(
        f"/api/workflow-recipes/{template_id}/executions/{eid}", headers=context_header(running.settings, workspace_id)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def wait_finished(
    running: Running, workspace_id: str, template_id: str, eid: str, within: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        body = await get_execution(running, workspace_id, template_id, eid)
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"execution {eid} did not finish: {body}")


async def events_of(running: Running, eid: str) -> list[Envelope]:
    service = running.executor.service
    async with service.sessions() as session:
        return await service.store.load(session, "Execution", eid)


async def wait_for(predicate: Any, within: float = 30, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not reached in time")


def env_for_subprocess(settings: ExecutorSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SOUS_ENV": "test",
            "SOUS_DATABASE_URL": settings.database_url,
            "SOUS_DATABASE_NAME": settings.database_name,
            "SOUS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "SOUS_KAFKA_PARTITIONS": str(settings.kafka_partitions),
            "SOUS_MODEL_BASE_URL": settings.model_base_url,
            "SOUS_LEASE_TTL_S": str(settings.lease_ttl_s),
            "SOUS_HEARTBEAT_INTERVAL_S": str(settings.heartbeat_interval_s),
            "SOUS_SWEEPER_INTERVAL_S": str(settings.sweeper_interval_s),
            "SOUS_SCHEDULER_INTERVAL_S": "3600",
            "SOUS_CATALOG_URL": "",
            "SOUS_QUALITY_URL": "",
            "SOUS_INTERNAL_SECRET": settings.internal_secret,
            "SOUS_LOG_LEVEL": "WARNING",
        }
    )
    env.pop("SOUS_RUNNER_ID", None)
    return env

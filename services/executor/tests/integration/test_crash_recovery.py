"""SIGKILL the executor process during step 2 of 3; a new process resumes the run from its events."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from executor_harness import (
    ModelServer,
    agent_snapshot,
    context_header,
    env_for_subprocess,
    executor_settings,
    free_port,
    recipe_snapshot,
    running_executor,
    seed,
    step,
    wait_finished,
)
from sqlalchemy import select

from sous_executor.adapters.tables import leases
from sous_local.testing import Infrastructure, unique
from sous_service.db import create_engine, create_session_factory
from sous_service.internal_client import rebind_hook

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def _popen(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sous_executor", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def spawn(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = _popen(env, port)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    proc.kill()
    raise RuntimeError("executor did not start")


def signing_client(secret: str, timeout: float) -> httpx.AsyncClient:
    """Each request carries a context bound to it, as the gateway would send."""
    return httpx.AsyncClient(timeout=timeout, event_hooks={"request": [rebind_hook(secret, "executor")]})


async def execute_on(port: int, template_id: str, headers: dict[str, str], secret: str) -> str:
    """Start a run on the executor process listening on `port`; its execution id."""
    async with signing_client(secret, 10) as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/api/workflow-recipes/{template_id}/execute", json={}, headers=headers
        )
    assert response.status_code == 202, response.text
    return str(response.json()["recipe_execution_id"])


async def wait_json(
    url: str, headers: dict[str, str], secret: str, predicate: Any, within: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    async with signing_client(secret, 5) as client:
        while time.monotonic() < deadline:
            response = await client.get(url, headers=headers)
            if response.status_code == 200:
                body = response.json()
                if predicate(body):
                    return body
            await asyncio.sleep(0.1)
    raise AssertionError(f"condition not reached: {body}")


async def test_sigkill_during_step_two_resumes_without_repeating_step_one(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server)
    ws = unique("ws")
    agent = agent_snapshot(ws)
    m1, m2 = unique("one"), unique("two")
    recipe = recipe_snapshot(
        ws,
        [
            step("one", 1, agent["id"], f"one {m1}"),
            # The slow call is answered only after the kill; the second attempt is as slow, and finishes.
            step("two", 2, agent["id"], f"two {m2} [[latency:2500]]"),
            step("three", 3, agent["id"], f"three {unique('m')}"),
        ],
    )
    # Migrate and seed the replicas in-process, then let real processes do the work.
    async with running_executor(settings) as running:
        await seed(running, ws, recipe, [agent])
    env = env_for_subprocess(settings)
    headers = context_header(settings, ws)
    first_port = free_port()
    first = await spawn(env, first_port)
    try:
        eid = await execute_on(first_port, recipe["template_id"], headers, settings.internal_secret)
        url = f"http://127.0.0.1:{first_port}/api/workflow-recipes/{recipe['template_id']}/executions/{eid}"
        await wait_json(
            url,
            headers,
            settings.internal_secret,
            lambda b: any(r["step_id"] == "two" and r["status"] == "running" for r in b["step_results"]),
        )
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    second_port = free_port()
    second = await spawn(env, second_port)
    try:
        url = f"http://127.0.0.1:{second_port}/api/workflow-recipes/{recipe['template_id']}/executions/{eid}"
        body = await wait_json(
            url,
            headers,
            settings.internal_secret,
            lambda b: b["status"] in ("completed", "failed", "cancelled"),
            within=90,
        )
    finally:
        second.terminate()
        second.wait(20)
    assert body["status"] == "completed", body
    one, two, three = body["step_results"]
    assert one["attempt"] == 1 and two["attempt"] == 2 and three["status"] == "completed"
    # Step one reached the model once; step two twice (the interrupted attempt and the resumed one).
    assert await model_server.calls(m1) == 1
    assert await model_server.calls(m2) == 2


async def test_a_run_whose_accepting_process_died_after_the_claim_is_resumed_by_the_sweeper(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    """The accepting instance claims the run in the request's transaction; killed right after answering,
    it leaves a lease that expires, and another instance's sweeper (not its consumer) resumes the run."""
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server)
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(
        ws,
        [
            step("one", 1, agent["id"], f"one {unique('m')} [[latency:1500]]"),
            step("two", 2, agent["id"], f"two {unique('m')}"),
        ],
    )
    async with running_executor(settings) as running:
        await seed(running, ws, recipe, [agent])
    env = env_for_subprocess(settings)
    first_runner = unique("accepting")
    env["SOUS_RUNNER_ID"] = first_runner
    headers = context_header(settings, ws)
    first_port = free_port()
    first = await spawn(env, first_port)
    try:
        eid = await execute_on(first_port, recipe["template_id"], headers, settings.internal_secret)
        # Answered: the run is claimed already, by the instance that accepted it.
        database = create_engine(settings)
        try:
            async with create_session_factory(database)() as session:
                owner = await session.scalar(select(leases.c.owner).where(leases.c.execution_id == eid))
        finally:
            await database.dispose()
        assert owner == first_runner
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    other = executor_settings(fresh_database, infra.kafka_bootstrap, model_server, runner_id=unique("sweeping"))
    async with running_executor(other, migrate=False) as running:
        service = running.executor.service
        body = await wait_finished(running, ws, recipe["template_id"], eid, within=90)
        assert body["status"] == "completed", body
        assert running.executor.sweeper.resumed >= 1
        async with service.sessions() as session:
            owner, claims = (
                await session.execute(select(leases.c.owner, leases.c.claims).where(leases.c.execution_id == eid))
            ).one()
        assert owner == other.runner_id and claims == 2

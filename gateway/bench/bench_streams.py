"""Live-event streams under a flood: one tenant tries to open 500 streams, another keeps working.

    .venv/bin/python gateway/bench/bench_streams.py [--attempts 500] [--reads 400]

Starts the whole stack (embedded PostgreSQL and broker, offline model, every service as a process) with
the default stream caps, then:

1. idle: tenant B reads its recipe list (4 in flight) while watching its own execution's stream;
2. flood: tenant A (25 callers) tries to open `--attempts` streams on a long-running execution; the
   caps admit some and refuse the rest with 429 and Retry-After, and the admitted ones stay open;
3. under flood: tenant B repeats step 1.

Prints tenant A's admitted/refused counts and tenant B's p50/p99 idle and under the flood, and the
time to B's first stream event both times. A benchmark, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from sous_gateway.tokens import mint_development_token
from sous_local.stack import Stack

SLOW_PROMPT = "Take your time [[latency:110000]]"
QUICK_PROMPT = "Hello [[latency:1500]]"


class Tenant:
    def __init__(self, client: httpx.AsyncClient, secret: str, users: int = 1) -> None:
        self.workspace = f"ws-{uuid.uuid4().hex[:8]}"
        self.client = client
        self.headers = [
            {
                "Authorization": "Bearer "
                + mint_development_token(f"u{i}-{uuid.uuid4().hex[:4]}", [self.workspace], ["admin"], 7200, secret),
                "X-Workspace-ID": self.workspace,
            }
            for i in range(users)
        ]

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        response = await self.client.request(method, path, headers=self.headers[0], **kw)
        if response.status_code != status:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    async def recipe(self, prompt: str) -> str:
        agent = await self.ok(
            "POST",
            "/api/agents",
            201,
            json={
                "name": "bench",
                "description": "d",
                "model_config": {"provider": "offline", "model_id": "sous-offline-1"},
                "skills": [],
            },
        )
        template_id = f"r-{uuid.uuid4().hex[:8]}"
        step = {"step_id": "s1", "order": 1, "agent_id": agent["id"], "prompt_template": prompt}
        body = {"template_id": template_id, "name": template_id, "description": "d", "template_definition": {}}
        await self.ok("POST", "/api/workflow-recipes", 201, json={**body, "steps": [step]})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = f"/api/workflow-recipes/{template_id}/executions"
            if (await self.client.get(path, headers=self.headers[0])).status_code == 200:
                return template_id
            await asyncio.sleep(0.2)
        raise RuntimeError("the executor never learned the recipe")

    async def run(self, template_id: str) -> str:
        started = await self.ok("POST", f"/api/workflow-recipes/{template_id}/execute", 202, json={"input_data": {}})
        return f"/api/workflow-recipes/{template_id}/executions/{started['recipe_execution_id']}/events"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def watch_first_event(tenant: Tenant, path: str) -> float:
    """Milliseconds from opening the stream to its first stored event."""
    started = time.perf_counter()
    async with tenant.client.stream("GET", path, headers=tenant.headers[0]) as response:
        if response.status_code != 200:
            raise RuntimeError(f"B's own stream refused: {response.status_code}")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("B's stream ended without an event")


async def measure_b(tenant: Tenant, template_id: str, reads: int) -> tuple[list[float], float]:
    path = await tenant.run(template_id)
    first_event = await watch_first_event(tenant, path)
    latencies: list[float] = []
    remaining = reads

    async def reader() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            response = await tenant.client.get("/api/workflow-recipes", headers=tenant.headers[0])
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"B's read failed: {response.status_code} {response.text}")

    # B watches its run while it reads: the stream stays open during the whole measurement.
    async with tenant.client.stream("GET", path, headers=tenant.headers[0]) as watching:
        if watching.status_code != 200:
            raise RuntimeError(f"B's own stream refused: {watching.status_code}")
        await asyncio.gather(*(reader() for _ in range(4)))
    return latencies, first_event


async def flood(tenant: Tenant, path: str, attempts: int, hold: contextlib.AsyncExitStack) -> Counter[int]:
    outcomes: Counter[int] = Counter()

    async def attempt(i: int) -> None:
        context = tenant.client.stream("GET", path, headers=tenant.headers[i % len(tenant.headers)])
        response = await context.__aenter__()
        outcomes[response.status_code] += 1
        if response.status_code == 200:
            hold.push_async_exit(context)
        else:
            await context.__aexit__(None, None, None)

    await asyncio.gather(*(attempt(i) for i in range(attempts)))
    return outcomes


async def main_async(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="sous-bench-streams-"))
    # Request rate limits out of the way: this measures the stream caps and pools, not the token buckets.
    env = {
        f"SOUS_{name}": "1000000"
        for name in ("RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_BURST", "WORKSPACE_RATE_LIMIT_PER_MINUTE")
    } | {"SOUS_WORKSPACE_RATE_LIMIT_BURST": "1000000"}
    stack = Stack(state, broker="embedded", env=env, durable_postgres=False, ports="auto", quiet=True)
    stack.start()
    limits = httpx.Limits(max_connections=args.attempts + 50, max_keepalive_connections=50)
    try:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120, limits=limits) as client:
            a, b = Tenant(client, stack.jwt_secret, users=25), Tenant(client, stack.jwt_secret)
            slow, quick = await a.recipe(SLOW_PROMPT), await b.recipe(QUICK_PROMPT)
            await measure_b(b, quick, 50)  # warm-up
            idle, idle_first = await measure_b(b, quick, args.reads)
            async with contextlib.AsyncExitStack() as hold:
                outcomes = await flood(a, await a.run(slow), args.attempts, hold)
                loaded, loaded_first = await measure_b(b, quick, args.reads)
        print(f"tenant A: {args.attempts} stream attempts -> admitted {outcomes[200]}, refused 429 {outcomes[429]}")
        others = {k: v for k, v in outcomes.items() if k not in (200, 429)}
        if others:
            print(f"          other answers: {others}")
        print(f"{'tenant B (4 readers + its stream)':36}{'p50 ms':>9}{'p99 ms':>9}{'first event ms':>16}")
        for label, values, first in (("idle", idle, idle_first), ("while A floods", loaded, loaded_first)):
            print(f"{label:36}{pct(values, 0.5):9.2f}{pct(values, 0.99):9.2f}{first:16.1f}")
        print(f"p99 ratio under flood / idle: {pct(loaded, 0.99) / pct(idle, 0.99):.2f}")
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=500, help="streams tenant A tries to open")
    parser.add_argument("--reads", type=int, default=400, help="recipe reads by tenant B per phase")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

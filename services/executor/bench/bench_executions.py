"""Benchmark: executions/s and per-step engine overhead for a 3-step recipe at 1, 10 and 50 concurrent runs.

Real PostgreSQL, the real broker and the offline model server over HTTP (latency zero). Engine overhead per
step = (StepCompleted.occurred_at - StepStarted.occurred_at) - time spent inside the model call.

    .venv/bin/python services/executor/bench/bench_executions.py [--broker embedded|kafka] [--runs-per-level N]

Uses SOUS_TEST_DATABASE_URL / SOUS_TEST_KAFKA_BOOTSTRAP when set, else starts embedded servers
(`--broker kafka` starts a single Apache Kafka node).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from sous_events.events.catalog import AgentRegistered, RecipeCreated
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_executor.bootstrap import MIGRATIONS_DIR, build_app
from sous_executor.config import ExecutorSettings
from sous_executor.entrypoints.consumers import replica_consumer
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context
from sous_service.migrate import upgrade_async


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_model_server(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sous_local.model_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run_level(app: Any, settings: ExecutorSettings, concurrency: int, total: int) -> dict[str, float]:
    executor = app.state.executor
    service = executor.service
    ws = f"bench-{uuid.uuid4().hex[:8]}"
    agent = {
        "id": new_id(),
        "workspace_id": ws,
        "name": f"bench-agent-{ws}",
        "model_config": {"provider": "offline", "model_id": "gpt-4o-mini"},
        "skills": [],
        "configuration": {"max_iterations": 3},
        "status": "active",
    }
    recipe = {
        "id": new_id(),
        "workspace_id": ws,
        "template_id": f"bench-{ws}",
        "name": "bench",
        "steps": [
            {
                "step_id": f"s{i}",
                "order": i,
                "agent_id": agent["id"],
                "prompt_template": f"step {i} {{previous_output}}",
            }
            for i in (1, 2, 3)
        ],
        "execution_config": {"mode": "sequential", "timeout_per_step": 60, "total_timeout": 300},
        "schedule_config": {"type": "manual"},
        "revision": 1,
    }
    async with service.sessions() as session, session.begin():
        await replica_consumer(service).dispatch()(
            session,
            make_event(
                AgentRegistered(agent=agent),
                producer="bench",
                workspace_id=ws,
                aggregate_id=agent["id"],
                aggregate_version=1,
            ),
        )
        await replica_consumer(service).dispatch()(
            session,
            make_event(
                RecipeCreated(recipe=recipe),
                producer="bench",
                workspace_id=ws,
                aggregate_id=recipe["id"],
                aggregate_version=1,
            ),
        )
    ctx = InternalContext(workspace_id=ws, user_id="bench", scopes=("*",))
    headers = {CONTEXT_HEADER: sign_context(ctx, settings.internal_secret)}
    transport = httpx.ASGITransport(app=app)
    durations: list[str] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://executor", timeout=120) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                response = await client.post(
                    f"/api/workflow-recipes/{recipe['template_id']}/execute", json={}, headers=headers
                )
                response.raise_for_status()
                eid = response.json()["recipe_execution_id"]
                while True:
                    body = (
                        await client.get(
                            f"/api/workflow-recipes/{recipe['template_id']}/executions/{eid}", headers=headers
                        )
                    ).json()
                    if body["status"] in ("completed", "failed", "cancelled"):
                        if body["status"] != "completed":
                            raise RuntimeError(f"run {eid} ended {body['status']}: {body['error_message']}")
                        durations.append(eid)
                        return
                    await asyncio.sleep(min(0.5, 0.02 * concurrency))  # poll lightly: the bench must not be the load

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        elapsed = time.perf_counter() - started
    overheads: list[float] = []
    async with service.sessions() as session:
        for eid in durations:
            events = await service.store.load(session, "Execution", eid)
            starts = {e.payload["step_id"]: e.occurred_at for e in events if e.event_type == "StepStarted"}
            finished = next(e for e in events if e.event_type == "ExecutionFinished")
            model_ms = {r["step_id"]: float(r.get("model_ms") or 0.0) for r in finished.payload["step_results"]}
            for e in events:
                if e.event_type == "StepCompleted":
                    step_ms = (e.occurred_at - starts[e.payload["step_id"]]).total_seconds() * 1000
                    overheads.append(step_ms - model_ms[e.payload["step_id"]])
    return {
        "concurrency": concurrency,
        "runs": total,
        "executions_per_s": total / elapsed,
        "overhead_p50_ms": percentile(overheads, 0.5),
        "overhead_p99_ms": percentile(overheads, 0.99),
        "overhead_mean_ms": statistics.fmean(overheads) if overheads else 0.0,
    }


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="sous-bench-"))
    stoppers: list[Any] = []
    model_proc: subprocess.Popen[bytes] | None = None
    try:
        database_url = os.environ.get("SOUS_TEST_DATABASE_URL", "")
        if not database_url:
            from sous_local.postgres import EmbeddedPostgres

            pg = EmbeddedPostgres(root / "postgres", durable=False)
            pg.start()
            stoppers.append(pg)
            database_url = pg.url
        bootstrap = os.environ.get("SOUS_TEST_KAFKA_BOOTSTRAP", "") if args.broker == "kafka" else ""
        if not bootstrap:
            if args.broker == "kafka":
                from sous_local.kafka_lane import ApacheKafka

                broker: Any = ApacheKafka(root / "kafka")
            else:
                from sous_local.broker import EmbeddedBroker

                broker = EmbeddedBroker(root / "broker")
            broker.start()
            stoppers.append(broker)
            bootstrap = broker.bootstrap
        port = free_port()
        model_proc = start_model_server(port)
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        settings = ExecutorSettings(
            env="test",
            database_url=database_url,
            database_name=f"bench_{uuid.uuid4().hex[:8]}",
            database_pool_size=20,
            kafka_bootstrap=bootstrap,
            model_base_url=f"http://127.0.0.1:{port}/v1",
            max_concurrent_executions_per_workspace=1000,
            catalog_url="",
            scheduler_interval_s=3600,
            log_level="WARNING",
        )
        await upgrade_async(settings, MIGRATIONS_DIR)
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            print(f"broker={args.broker} ({bootstrap}), 3-step sequential recipe, model latency 0")
            print(f"{'concurrent':>10} {'runs':>5} {'exec/s':>8} {'overhead p50 ms':>16} {'p99 ms':>8}")
            for level in args.levels:
                total = max(args.runs_per_level, level * 2)
                result = await run_level(app, settings, level, total)
                print(
                    f"{level:>10} {total:>5} {result['executions_per_s']:>8.2f} "
                    f"{result['overhead_p50_ms']:>16.2f} {result['overhead_p99_ms']:>8.2f}"
                )
    finally:
        if model_proc is not None:
            model_proc.terminate()
            model_proc.wait(10)
        for thing in reversed(stoppers):
            thing.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--broker", choices=["embedded", "kafka"], default=os.environ.get("SOUS_TEST_BROKER", "embedded")
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs-per-level", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

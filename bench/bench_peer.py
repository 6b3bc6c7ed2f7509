"""Benchmark against a peer: Sous and DBOS running the same 3-step recipe, in one run, on one machine.

Both engines use the same PostgreSQL server (a database each, synchronous commit on) and the same offline
model server over HTTP through the openai client. Sous runs as it ships (`sous_local.stack.Stack`: every
service as a process, the broker, the model server); the benchmark creates the agent and the recipe through
the gateway, then starts and follows executions on the executor's public API directly (signed as an
internal caller, so the gateway's per-caller rate limits do not shape the result). DBOS runs the recipe as a
DBOS workflow in an environment of its own (`bench/peer/dbos_recipe.py`, see `scripts/bench-peer-env.sh`).

Per level it prints executions/s, per-step engine overhead p50/p99 (step wall time minus time inside the
model call), engine CPU per step (the executor process for Sous, the DBOS process for DBOS; PostgreSQL and
the broker are not counted for either) and Sous/DBOS; for Sous also execute -> first StepStarted p50/p99.

    make bench-peer                      # levels 1, 10, 50 at latency 0, then 500 runs at 1 s latency
    .venv/bin/python bench/bench_peer.py --broker kafka --levels 1 10 --skip-high
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from sous_gateway.tokens import mint_development_token
from sous_local.stack import Stack
from sous_service.internal_client import rebind_hook
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".sous" / "bench-peer" / "venv" / "bin" / "python"
STEP_COUNT = 3
FINISHED = ("completed", "failed", "cancelled")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class SousSample:
    overheads_ms: list[float] = field(default_factory=list)
    first_step_ms: list[float] = field(default_factory=list)


def parse_sse(text: str) -> list[dict[str, Any]]:
    envelopes = []
    for block in text.split("\n\n"):
        data = [line[5:].lstrip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            envelopes.append(json.loads("\n".join(data)))
    return envelopes


def timestamp(envelope: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(envelope["occurred_at"]).replace("Z", "+00:00")).timestamp()


def record_execution(sample: SousSample, envelopes: list[dict[str, Any]], submitted_at: float) -> None:
    starts: dict[str, float] = {}
    completions: dict[str, float] = {}
    model_ms: dict[str, float] = {}
    for envelope in envelopes:
        kind, payload = envelope["event_type"], envelope["payload"]
        if kind == "StepStarted":
            starts.setdefault(payload["step_id"], timestamp(envelope))
        elif kind == "StepCompleted":
            completions[payload["step_id"]] = timestamp(envelope)
        elif kind == "ExecutionFinished":
            if payload.get("status") != "completed":
                raise RuntimeError(f"execution ended {payload.get('status')}: {payload.get('error')}")
            for result in payload.get("step_results", []):
                model_ms[result["step_id"]] = float(result.get("model_ms") or 0.0)
    if starts:
        sample.first_step_ms.append((min(starts.values()) - submitted_at) * 1000)
    for step_id, done in completions.items():
        sample.overheads_ms.append((done - starts[step_id]) * 1000 - model_ms.get(step_id, 0.0))


async def prepare_recipe(stack: Stack, latency_ms: int) -> tuple[str, str]:
    """A workspace with one agent and one 3-step recipe, created through the gateway; (workspace, template)."""
    workspace = f"peer-{uuid.uuid4().hex[:8]}"
    token = mint_development_token("bench", [workspace], roles=("admin",), secret=stack.jwt_secret)
    prefix = f"[[latency:{latency_ms}]] " if latency_ms else ""
    headers = {"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=60) as gateway:
        agent = (
            (
                await gateway.post(
                    "/api/agents",
                    json={"name": "peer", "model_config": {"provider": "offline", "model_id": "gpt-4o-mini"}},
                )
            )
            .raise_for_status()
            .json()
        )
        template_id = f"peer-{uuid.uuid4().hex[:8]}"
        steps = [
            {
                "step_id": f"s{i}",
                "order": i,
                "agent_id": agent["id"],
                "prompt_template": f"{prefix}step {i} {{previous_output}}",
            }
            for i in range(1, STEP_COUNT + 1)
        ]
        body = {
            "template_id": template_id,
            "name": "peer benchmark",
            "description": "3 sequential steps, one model call each",
            "template_definition": {},
            "steps": steps,
            "execution_config": {"mode": "sequential", "timeout_per_step": 120, "total_timeout": 600},
        }
        created = await gateway.post("/api/workflow-recipes", json=body)
        if created.status_code != 201:
            raise RuntimeError(f"recipe refused: {created.status_code} {created.text}")
        for _ in range(600):
            if (await gateway.get(f"/api/workflow-recipes/{template_id}/executions")).status_code == 200:
                return workspace, template_id
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the executor never saw recipe {template_id}")


async def sous_level(stack: Stack, concurrency: int, total: int, latency_ms: int) -> dict[str, Any]:
    workspace, template_id = await prepare_recipe(stack, latency_ms)
    context = InternalContext(workspace_id=workspace, user_id="bench", roles=("admin",), scopes=("*",))
    secret = stack.internal_secret
    limits = httpx.Limits(max_connections=concurrency * 2 + 10, max_keepalive_connections=concurrency * 2 + 10)
    sample = SousSample()
    executor = psutil.Process(stack.pids()["executor"])
    async with httpx.AsyncClient(
        base_url=stack.urls["executor"],
        headers={CONTEXT_HEADER: sign_context(context, secret)},
        event_hooks={"request": [rebind_hook(secret, "executor")]},
        limits=limits,
        timeout=httpx.Timeout(600, connect=30),
    ) as client:
        base = f"/api/workflow-recipes/{template_id}"
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                submitted_at = time.time()
                response = (await client.post(f"{base}/execute", json={"input_data": {}})).raise_for_status()
                execution_id = response.json()["recipe_execution_id"]
                # The live stream ends with ExecutionFinished: it is both the wait and the measurement.
                stream = (await client.get(f"{base}/executions/{execution_id}/events")).raise_for_status()
                record_execution(sample, parse_sse(stream.text), submitted_at)

        await asyncio.gather(*(one() for _ in range(min(5, total))))  # warm-up, not counted
        sample.overheads_ms.clear()
        sample.first_step_ms.clear()
        cpu_before = executor.cpu_times()
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        elapsed = time.perf_counter() - started
        cpu_after = executor.cpu_times()
    cpu_s = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    return {
        "engine": "sous",
        "concurrency": concurrency,
        "runs": total,
        "latency_ms": latency_ms,
        "executions_per_s": total / elapsed,
        "overhead_p50_ms": percentile(sample.overheads_ms, 0.5),
        "overhead_p99_ms": percentile(sample.overheads_ms, 0.99),
        "cpu_ms_per_step": cpu_s * 1000 / max(1, total * STEP_COUNT),
        "first_step_p50_ms": percentile(sample.first_step_ms, 0.5),
        "first_step_p99_ms": percentile(sample.first_step_ms, 0.99),
        "first_step_mean_ms": statistics.fmean(sample.first_step_ms) if sample.first_step_ms else 0.0,
    }


def dbos_level(stack: Stack, concurrency: int, total: int, latency_ms: int) -> dict[str, Any]:
    if not PEER_PYTHON.exists():
        raise SystemExit("the DBOS environment is missing: run `bash scripts/bench-peer-env.sh` (make bench-peer does)")
    server_url = stack.database_url.replace("postgresql+asyncpg://", "postgresql://")
    command = [
        str(PEER_PYTHON),
        str(ROOT / "bench" / "peer" / "dbos_recipe.py"),
        "--database-url",
        server_url,
        "--model-url",
        stack.model_url,
        "--levels",
        str(concurrency),
        "--runs-per-level",
        str(total),
        "--latency-ms",
        str(latency_ms),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=3600).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def print_row(sous: dict[str, Any], dbos: dict[str, Any]) -> None:
    ratio = sous["executions_per_s"] / dbos["executions_per_s"] if dbos["executions_per_s"] else 0.0
    print(
        f"{sous['concurrency']:>6} {sous['runs']:>5} {sous['latency_ms']:>6} | "
        f"{dbos['executions_per_s']:>8.2f} {dbos['overhead_p50_ms']:>7.1f} {dbos['overhead_p99_ms']:>7.1f} "
        f"{dbos['cpu_ms_per_step']:>6.2f} | "
        f"{sous['executions_per_s']:>8.2f} {sous['overhead_p50_ms']:>7.1f} {sous['overhead_p99_ms']:>7.1f} "
        f"{sous['cpu_ms_per_step']:>6.2f} {sous['first_step_p50_ms']:>7.1f} {sous['first_step_p99_ms']:>7.1f} | "
        f"{ratio:>5.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=["embedded", "kafka"], default="embedded")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs-per-level", type=int, default=40)
    parser.add_argument("--high-concurrency", type=int, default=500)
    parser.add_argument("--high-latency-ms", type=int, default=1000)
    parser.add_argument("--skip-high", action="store_true", help="leave out the high-concurrency level")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    args = parser.parse_args()
    high = args.high_concurrency
    env = {
        "SOUS_LOG_LEVEL": "WARNING",
        "SOUS_EXECUTOR_MAX_INFLIGHT": str(max(high, max(args.levels)) + 50),
        "SOUS_MAX_CONCURRENT_EXECUTIONS_PER_WORKSPACE": str(max(high, max(args.levels)) * 2 + 50),
        "SOUS_DATABASE_POOL_SIZE": "40",
    }
    levels = [(level, max(args.runs_per_level, level * 2), 0) for level in args.levels]
    if not args.skip_high:
        levels.append((high, high * 2, args.high_latency_ms))
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="sous-bench-peer-") as state,
        Stack(Path(state), broker=args.broker, env=env, ports="auto", quiet=True) as stack,
    ):
        print(f"Sous ({args.broker} broker) vs DBOS, 3-step sequential recipe, same PostgreSQL and model server")
        print(
            f"{'conc':>6} {'runs':>5} {'lat ms':>6} | {'DBOS x/s':>8} {'ovh p50':>7} {'ovh p99':>7} {'cpu ms':>6} | "
            f"{'Sous x/s':>8} {'ovh p50':>7} {'ovh p99':>7} {'cpu ms':>6} {'1st p50':>7} {'1st p99':>7} | "
            f"{'ratio':>5}"
        )
        for concurrency, total, latency_ms in levels:
            dbos = dbos_level(stack, concurrency, total, latency_ms)
            sous = asyncio.run(sous_level(stack, concurrency, total, latency_ms))
            print_row(sous, dbos)
            results += [dbos, sous]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

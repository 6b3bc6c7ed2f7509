"""The DBOS side of `make bench-peer`: the same 3-step sequential recipe as a DBOS workflow.

Runs in an environment of its own (`scripts/bench-peer-env.sh`), never in the services' one. Each step is
a DBOS step that calls the model once, through the openai client, over HTTP to the same offline model
server Sous uses; the workflow is checkpointed in a database of its own on the same PostgreSQL server.
Per-step overhead = the step's wall time inside the workflow minus the time spent inside the model call,
the same definition Sous's side uses.

Prints one JSON object per level on stdout (the orchestrator, bench/bench_peer.py, reads them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import uuid
from typing import Any

from dbos import DBOS, DBOSConfig
from openai import AsyncOpenAI

STEP_COUNT = 3
_state: dict[str, Any] = {}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@DBOS.step()
async def call_model(prompt: str) -> dict[str, Any]:
    client: AsyncOpenAI = _state["client"]
    started = time.perf_counter()
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    model_ms = (time.perf_counter() - started) * 1000
    return {"text": reply.choices[0].message.content or "", "model_ms": model_ms}


@DBOS.workflow()
async def recipe(latency_prefix: str) -> list[float]:
    """Three steps, each fed the previous output; returns each step's engine overhead in ms."""
    previous = ""
    overheads: list[float] = []
    for index in range(1, STEP_COUNT + 1):
        started = time.perf_counter()
        result = await call_model(f"{latency_prefix}step {index} {previous}")
        overheads.append((time.perf_counter() - started) * 1000 - float(result["model_ms"]))
        previous = str(result["text"])[:200]
    return overheads


async def run_level(concurrency: int, total: int, latency_ms: int) -> dict[str, Any]:
    prefix = f"[[latency:{latency_ms}]] " if latency_ms else ""
    semaphore = asyncio.Semaphore(concurrency)
    overheads: list[float] = []

    async def one() -> None:
        async with semaphore:
            handle = await DBOS.start_workflow_async(recipe, prefix)
            overheads.extend(await handle.get_result())

    started = time.perf_counter()
    cpu_started = time.process_time()
    await asyncio.gather(*(one() for _ in range(total)))
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    return {
        "engine": "dbos",
        "concurrency": concurrency,
        "runs": total,
        "latency_ms": latency_ms,
        "executions_per_s": total / elapsed,
        "overhead_p50_ms": percentile(overheads, 0.5),
        "overhead_p99_ms": percentile(overheads, 0.99),
        "cpu_ms_per_step": cpu_s * 1000 / max(1, total * STEP_COUNT),
    }


async def main_async(args: argparse.Namespace) -> None:
    _state["client"] = AsyncOpenAI(base_url=args.model_url, api_key="offline", max_retries=0, timeout=120)
    database = f"dbos_peer_{uuid.uuid4().hex[:8]}"
    config: DBOSConfig = {
        "name": "sous-peer-bench",
        "system_database_url": f"{args.database_url.rstrip('/')}/{database}",
        "sys_db_pool_size": max(20, min(200, max(args.levels) + 10)),
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        await run_level(1, 5, 0)  # warm-up: connections, prepared paths
        for level in args.levels:
            total = max(args.runs_per_level, level * 2)
            print(json.dumps(await run_level(level, total, args.latency_ms)), flush=True)
    finally:
        DBOS.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="server-level postgresql:// URL")
    parser.add_argument("--model-url", required=True, help="OpenAI-compatible base URL (…/v1)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs-per-level", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

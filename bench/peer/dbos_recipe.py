"""The DBOS side of `make bench-peer`: the same 3-step sequential recipe as a DBOS workflow.

Runs in an environment of its own (`scripts/bench-peer-env.sh`), never in the services' one. Each step is
a DBOS step that calls the model once, through the openai client, over HTTP to the same offline model
server Sous uses; the workflow is checkpointed in a database of its own on the same PostgreSQL server.
Per-step overhead = the step's wall time inside the workflow minus the time spent inside the model call,
the same definition Sous's side uses.

Concurrency is set so every level runs all its workflows at once: workflows are started directly (no
queue, so no worker concurrency caps them), the system database pool and the threads DBOS's async API
hands its database calls to (the event loop's default executor; asyncio's own default is cpu_count + 4)
are both `--db-connections`, the number of database connections Sous's executor may hold, and the openai
client keeps `--llm-connections` connections alive, the same pool Sous's executor gets.

Protocol with the orchestrator (bench/bench_peer.py), one JSON object per line: this prints
{"ready": true} once DBOS is launched, then reads a level per line on stdin ({"concurrency", "runs",
"latency_ms"}), warms up with a few workflows of that level, prints {"measuring": true}, waits for one more
line (the orchestrator samples CPU counters in between), runs the level and prints its result. End of input
ends the process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
from dbos import DBOS, DBOSConfig
from openai import AsyncOpenAI
from run_stats import peak_overlap, percentile  # a sibling module: this file runs as a script

STEP_COUNT = 3
WARM_UP_RUNS = 5
_state: dict[str, Any] = {}


@DBOS.step()
async def call_model(prompt: str) -> dict[str, Any]:
    client: AsyncOpenAI = _state["client"]
    started = time.perf_counter()
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    model_ms = (time.perf_counter() - started) * 1000
    return {"text": reply.choices[0].message.content or "", "model_ms": model_ms}


@DBOS.workflow()
async def recipe(latency_prefix: str) -> dict[str, Any]:
    """Three steps, each fed the previous output; each step's engine overhead in ms and the run's span."""
    started_at = time.time()
    previous = ""
    overheads: list[float] = []
    for index in range(1, STEP_COUNT + 1):
        started = time.perf_counter()
        result = await call_model(f"{latency_prefix}step {index} {previous}")
        overheads.append((time.perf_counter() - started) * 1000 - float(result["model_ms"]))
        previous = str(result["text"])[:200]
    return {"overheads": overheads, "span": [started_at, time.time()]}


async def run_workflows(concurrency: int, total: int, latency_ms: int) -> tuple[float, list[float], int]:
    """(elapsed s, step overheads, peak concurrent runs) of `total` workflows, `concurrency` at a time."""
    prefix = f"[[latency:{latency_ms}]] " if latency_ms else ""
    semaphore = asyncio.Semaphore(concurrency)
    overheads: list[float] = []
    spans: list[tuple[float, float]] = []

    async def one() -> None:
        async with semaphore:
            handle = await DBOS.start_workflow_async(recipe, prefix)
            result = await handle.get_result()
            overheads.extend(result["overheads"])
            spans.append((result["span"][0], result["span"][1]))

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    return time.perf_counter() - started, overheads, peak_overlap(spans)


async def read_line() -> str:
    return await asyncio.to_thread(sys.stdin.readline)


def say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def main_async(args: argparse.Namespace) -> None:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=args.db_connections, thread_name_prefix="bench-dbos-db")
    )
    limits = httpx2.Limits(max_connections=args.llm_connections, max_keepalive_connections=args.llm_connections)
    _state["client"] = AsyncOpenAI(
        base_url=args.model_url,
        api_key="offline",
        max_retries=0,
        timeout=120,
        http_client=httpx2.AsyncClient(limits=limits, timeout=120),
    )
    database = f"dbos_peer_{uuid.uuid4().hex[:8]}"
    config: DBOSConfig = {
        "name": "sous-peer-bench",
        "system_database_url": f"{args.database_url.rstrip('/')}/{database}",
        "sys_db_pool_size": args.db_connections,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        await run_workflows(1, WARM_UP_RUNS, 0)  # connections, prepared paths
        say({"ready": True})
        while line := (await read_line()).strip():
            level = json.loads(line)
            concurrency, total, latency_ms = int(level["concurrency"]), int(level["runs"]), int(level["latency_ms"])
            await run_workflows(concurrency, min(WARM_UP_RUNS, total), latency_ms)  # not counted
            say({"measuring": True})
            await read_line()
            elapsed, overheads, peak = await run_workflows(concurrency, total, latency_ms)
            say(
                {
                    "engine": "dbos",
                    "concurrency": concurrency,
                    "runs": total,
                    "latency_ms": latency_ms,
                    "elapsed_s": elapsed,
                    "executions_per_s": total / elapsed,
                    "overhead_p50_ms": percentile(overheads, 0.5),
                    "overhead_p99_ms": percentile(overheads, 0.99),
                    "peak_concurrent_runs": peak,
                }
            )
    finally:
        DBOS.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="server-level postgresql:// URL")
    parser.add_argument("--model-url", required=True, help="OpenAI-compatible base URL (…/v1)")
    parser.add_argument("--db-connections", type=int, default=64)
    parser.add_argument("--llm-connections", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

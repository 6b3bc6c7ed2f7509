"""Benchmark against a peer: Sous and DBOS running the same 3-step recipe, in one run, on one machine.

Both engines use the same PostgreSQL server (a database each, synchronous commit on) and the same offline
model server over HTTP through the openai client. Sous runs as it ships (`sous_local.stack.Stack`: every
service as a process, the broker, the model server); the benchmark creates the agent and the recipe through
the gateway, then starts and follows executions on the executor's public API directly (signed as an
internal caller, so the gateway's per-caller rate limits do not shape the result). DBOS runs the recipe as a
DBOS workflow in an environment of its own (`bench/peer/dbos_recipe.py`, see `scripts/bench-peer-env.sh`).

Fair by construction: while one engine is measured the other one's processes are stopped (SIGSTOP; Sous's
services and broker, or the DBOS process), so neither pays for the other's idle loops; both may hold the
same number of database connections (`--db-connections`) and model connections; CPU is read the same way
for both, from outside, with psutil, over the measured runs only. Before the first level each engine runs
`--warm-up-runs` executions (300, 10 at a time), and each level starts with a few more: none is counted.

Per level it prints executions/s, per-step engine overhead p50/p99 (step wall time minus time inside the
model call), CPU per step of the engine process (Sous's executor, the DBOS process), of Sous's whole stack
(every service and the broker) and of PostgreSQL, the peak number of runs in flight at once, Sous's
execute -> first StepStarted p50/p99, and Sous/DBOS executions/s. Every figure also goes to a JSON file
(default .sous/bench-peer/<broker>-<UTC time>.json).

    make bench-peer                                     # embedded broker (all levels), then Apache Kafka
    .venv/bin/python bench/bench_peer.py --engines sous --levels 10 --skip-high     # one side, one level
    .venv/bin/python bench/bench_peer.py --levels --runs-per-level 20               # only the 500-run level
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from peer.sous_side import PROCESS, STEP_COUNT, sous_level

from sous_local.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".sous" / "bench-peer"
PEER_PYTHON = RESULTS / "venv" / "bin" / "python"
NOT_SOUS = ("postgres", "model")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, its live descendants and the descendants it has reaped."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            try:
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        return 0.0
    return total


class CpuMeter:
    """CPU seconds spent by named process trees between start() and stop()."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.before: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        return {name: sum(tree_cpu_s(pid) for pid in pids) for name, pids in self.groups.items()}

    def read(self, name: str) -> float:
        """CPU seconds group `name` has spent so far."""
        return sum(tree_cpu_s(pid) for pid in self.groups[name])

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> None:
        after = self._read()
        self.spent = {name: after[name] - self.before[name] for name in after}

    def per_step_ms(self, name: str, runs: int) -> float:
        return self.spent[name] * 1000 / max(1, runs * STEP_COUNT)


@contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """Stops the processes (and their children) for the block, so their idle work costs the other side nothing."""
    stopped: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                process.send_signal(signal.SIGSTOP)
                stopped.append(process)
        except psutil.NoSuchProcess:
            continue
    try:
        yield
    finally:
        for process in stopped:
            try:
                process.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                continue


class DbosSide:
    """The DBOS process (bench/peer/dbos_recipe.py), fed one level at a time."""

    def __init__(self, stack: Stack, db_connections: int, llm_connections: int) -> None:
        if not PEER_PYTHON.exists():
            raise SystemExit("the DBOS environment is missing: run `bash scripts/bench-peer-env.sh`")
        server_url = stack.database_url.replace("postgresql+asyncpg://", "postgresql://")
        self.process = subprocess.Popen(
            [
                str(PEER_PYTHON),
                str(ROOT / "bench" / "peer" / "dbos_recipe.py"),
                f"--database-url={server_url}",
                f"--model-url={stack.model_url}",
                f"--db-connections={db_connections}",
                f"--llm-connections={llm_connections}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.postgres_pid = stack.pids()["postgres"]
        self._expect("ready")

    def _expect(self, key: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        while line := self.process.stdout.readline():
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                if key in message:
                    return message
        raise RuntimeError(f"the DBOS process ended (exit {self.process.wait()}) before saying {key!r}")

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def level(self, concurrency: int, total: int, latency_ms: int) -> dict[str, Any]:
        self._send({"concurrency": concurrency, "runs": total, "latency_ms": latency_ms})
        self._expect("measuring")
        meter = CpuMeter({"engine": [self.process.pid], "postgres": [self.postgres_pid]})
        meter.start()
        self._send({"go": True})
        result = self._expect("engine")
        meter.stop()
        result["cpu_ms_per_step"] = meter.per_step_ms("engine", total)
        result["postgres_cpu_ms_per_step"] = meter.per_step_ms("postgres", total)
        return result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def print_header() -> None:
    print(
        f"{'conc':>5} {'runs':>5} {'lat':>5} | {'DBOS x/s':>8} {'ovh p50':>7} {'p99':>7} {'cpu':>5} {'pg':>5} "
        f"{'peak':>4} | {'Sous x/s':>8} {'ovh p50':>7} {'p99':>7} {'cpu':>5} {'stack':>5} {'pg':>5} {'peak':>4} "
        f"{'1st p50':>7} {'p99':>7} | {'ratio':>5} {'load':>5}",
        flush=True,
    )


def print_row(level: tuple[int, int, int], dbos: dict[str, Any] | None, sous: dict[str, Any] | None) -> None:
    concurrency, total, latency_ms = level
    left = (
        f"{dbos['executions_per_s']:>8.2f} {dbos['overhead_p50_ms']:>7.1f} {dbos['overhead_p99_ms']:>7.1f} "
        f"{dbos['cpu_ms_per_step']:>5.1f} {dbos['postgres_cpu_ms_per_step']:>5.1f} {dbos['peak_concurrent_runs']:>4}"
        if dbos
        else f"{'-':>8} {'':>7} {'':>7} {'':>5} {'':>5} {'':>4}"
    )
    right = (
        f"{sous['executions_per_s']:>8.2f} {sous['overhead_p50_ms']:>7.1f} {sous['overhead_p99_ms']:>7.1f} "
        f"{sous['cpu_ms_per_step']:>5.1f} {sous['stack_cpu_ms_per_step']:>5.1f} "
        f"{sous['postgres_cpu_ms_per_step']:>5.1f} {sous['peak_concurrent_runs']:>4} "
        f"{sous['first_step_p50_ms']:>7.1f} {sous['first_step_p99_ms']:>7.1f}"
        if sous
        else f"{'-':>8} {'':>7} {'':>7} {'':>5} {'':>5} {'':>5} {'':>4} {'':>7} {'':>7}"
    )
    ratio = f"{sous['executions_per_s'] / dbos['executions_per_s']:>5.2f}" if sous and dbos else f"{'-':>5}"
    print(
        f"{concurrency:>5} {total:>5} {latency_ms:>5} | {left} | {right} | {ratio} {os.getloadavg()[0]:>5.1f}",
        flush=True,
    )
    if sous and sous["stream_resumes"]:
        print(f"      (Sous: {sous['stream_resumes']} live event streams cut and resumed with Last-Event-ID)")


def write_results(path: Path, settings: dict[str, Any], results: list[dict[str, Any]]) -> None:
    ratios = {
        f"{s['concurrency']}@{s['latency_ms']}ms": s["executions_per_s"] / d["executions_per_s"]
        for s in results
        if s["engine"] == "sous"
        for d in results
        if d["engine"] == "dbos" and (d["concurrency"], d["latency_ms"]) == (s["concurrency"], s["latency_ms"])
    }
    path.write_text(json.dumps({**settings, "results": results, "sous_over_dbos": ratios}, indent=2))


def sous_environment(highest: int, db_connections: int, llm_connections: int) -> dict[str, str]:
    """Limits that would otherwise cap the benchmark below its concurrency rather than measure the engine."""
    return {
        "SOUS_LOG_LEVEL": "WARNING",
        # One instance carries every run of the highest level at once, none waits for a slot ...
        "SOUS_EXECUTOR_MAX_INFLIGHT": str(highest + 50),
        "SOUS_MAX_CONCURRENT_EXECUTIONS_PER_WORKSPACE": str(highest * 2 + 50),
        # ... a level of 500 starts more than the default 1,000 runs per workspace and day ...
        "SOUS_DEFAULT_RUNS_PER_DAY": "0",
        # ... a start of the 500 still waiting in the executor's own queues after 30 s is measured, not refused ...
        "SOUS_INTERNAL_CONTEXT_MAX_AGE_S": "600",
        # ... and holds as many database and model connections as DBOS may (a pool plus as much overflow).
        "SOUS_DATABASE_POOL_SIZE": str(max(1, db_connections // 2)),
        "SOUS_LLM_MAX_CONNECTIONS": str(llm_connections),
    }


def warm_up(
    stack: Stack, meter: CpuMeter, dbos: DbosSide | None, sous_pids: list[int], engines: list[str], runs: int
) -> None:
    """Both engines run `runs` executions, 10 at a time, before anything is measured: the levels then measure
    processes in their steady state, as a long-running deployment is (Python's caches, PostgreSQL's plans
    and statistics and, on the Kafka lane, the broker's JVM, whose JIT-compiled code took more than the first
    level to settle: its CPU per step fell by a third between two identical levels run one after the other).
    What `meter` reads meanwhile is discarded: each level starts it again."""
    if runs <= 0:
        return
    if dbos is not None:
        with paused(sous_pids):
            dbos.level(10, runs, 0)
    if "sous" in engines:
        with paused([dbos.process.pid] if dbos else []):
            asyncio.run(sous_level(stack, 10, runs, 0, meter))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=["embedded", "kafka"], default="embedded")
    parser.add_argument("--engines", nargs="+", choices=["sous", "dbos"], default=["dbos", "sous"])
    parser.add_argument("--levels", type=int, nargs="*", default=[1, 10, 50], help="concurrency levels at latency 0")
    parser.add_argument(
        "--runs-per-level",
        type=int,
        default=300,
        # Long enough that a level lasts several seconds on either engine: at 40 runs a DBOS level lasted about
        # one second and its ramp-up and tail, not its steady rate, decided the figure.
        help="at least; a level runs 2x its concurrency",
    )
    parser.add_argument("--high-concurrency", type=int, default=500)
    parser.add_argument("--high-latency-ms", type=int, default=1000)
    parser.add_argument("--high-runs", type=int, default=0, help="runs of the high level (default: its concurrency)")
    parser.add_argument("--skip-high", action="store_true", help="leave out the high-concurrency level")
    parser.add_argument(
        "--workspaces", type=int, default=1, help="Sous: spread each level's runs over this many workspaces"
    )
    parser.add_argument(
        "--drain",
        action="store_true",
        help="Sous: count the stack's CPU until its consumers have applied the level's events (they lag the runs)",
    )
    parser.add_argument(
        "--warm-up-runs",
        type=int,
        default=300,
        help="executions each engine runs (10 at a time, not counted) before the first level",
    )
    parser.add_argument("--db-connections", type=int, default=64, help="database connections each engine may hold")
    parser.add_argument("--json", type=Path, help="result file (default .sous/bench-peer/<broker>-<time>.json)")
    parser.add_argument(
        "--state-dir", type=Path, help="keep the stack's state and logs here (default: a temporary one)"
    )
    args = parser.parse_args()
    levels = [(level, max(args.runs_per_level, level * 2), 0) for level in args.levels]
    if not args.skip_high:
        high = args.high_concurrency
        levels.append((high, args.high_runs or high, args.high_latency_ms))
    if not levels:
        parser.error("no level to run")
    highest = max(concurrency for concurrency, _, _ in levels)
    llm_connections = max(100, 2 * (highest + 50))
    env = sous_environment(highest, args.db_connections, llm_connections)
    started_at = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    path = args.json or RESULTS / f"{args.broker}-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "broker": args.broker,
        "started_at": started_at.isoformat(),
        "cpu_count": os.cpu_count(),
        "db_connections": args.db_connections,
        "llm_connections": llm_connections,
        "sous_environment": env,
        "sous_workspaces": args.workspaces,
        "sous_drain": args.drain,
        "warm_up_runs": args.warm_up_runs,
    }
    dbos: DbosSide | None = None
    with (
        tempfile.TemporaryDirectory(prefix="sous-bench-peer-") as scratch,
        Stack(args.state_dir or Path(scratch), broker=args.broker, env=env, ports="auto", quiet=True) as stack,
    ):
        sous_pids = [pid for name, pid in stack.pids().items() if name not in NOT_SOUS]
        sous_meter = CpuMeter(
            {
                "engine": [stack.pids()["executor"]],
                "stack": sous_pids,
                "postgres": [stack.pids()["postgres"]],
                # The stack's share of each process, in the JSON only: where its CPU goes.
                **{f"{PROCESS}{name}": [pid] for name, pid in stack.pids().items() if name not in NOT_SOUS},
            }
        )
        try:
            if "dbos" in args.engines:
                with paused(sous_pids):
                    dbos = DbosSide(stack, args.db_connections, llm_connections)
            print(f"Sous ({args.broker} broker) vs DBOS, 3-step sequential recipe, same PostgreSQL and model server")
            print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start", flush=True)
            warm_up(stack, sous_meter, dbos, sous_pids, args.engines, args.warm_up_runs)
            print_header()
            for concurrency, total, latency_ms in levels:
                dbos_result = sous_result = None
                if dbos is not None:
                    with paused(sous_pids):
                        dbos_result = dbos.level(concurrency, total, latency_ms)
                    dbos_result["load_average"] = os.getloadavg()[0]
                    results.append(dbos_result)
                    write_results(path, settings, results)
                if "sous" in args.engines:
                    with paused([dbos.process.pid] if dbos else []):
                        sous_result = asyncio.run(
                            sous_level(stack, concurrency, total, latency_ms, sous_meter, args.workspaces, args.drain)
                        )
                    sous_result["load_average"] = os.getloadavg()[0]
                    results.append(sous_result)
                print_row((concurrency, total, latency_ms), dbos_result, sous_result)
                write_results(path, settings, results)  # after every level: a failure later keeps these
        finally:
            if dbos is not None:
                dbos.close()
    print(f"results: {path}")


if __name__ == "__main__":
    main()

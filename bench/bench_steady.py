"""Benchmark: whether a run costs the same after thousands of runs as after the first few hundred.

One stack (`sous_local.stack.Stack`, as `make up` starts it), one recipe (`make bench-peer`'s 3-step
sequential recipe), then `--windows` consecutive windows of `--runs` executions each at `--concurrency`. Each
window starts once the previous one's events are applied (the stack is idle again) and its CPU counts the work
its consumers do after its last run, so a window measures the stores and processes as the runs before it left
them: a cost that grows with what was stored shows as executions/s falling and CPU per step rising from one
window to the next. Prints one line per window: executions/s, CPU per step (ms) of the executor, of every
Sous process (and of each), and of PostgreSQL.

    make bench-steady
    .venv/bin/python bench/bench_steady.py --broker kafka --windows 10 --runs 500
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench_peer import NOT_SOUS, CpuMeter, sous_environment
from peer.sous_side import PROCESS, sous_level

from sous_local.stack import Stack

WARM_UP_RUNS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=("embedded", "kafka"), default="embedded")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--runs", type=int, default=300, help="executions per window")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="sous-bench-steady-") as scratch,
        Stack(
            Path(scratch),
            broker=args.broker,
            env=sous_environment(args.concurrency, 64, 120),
            ports="auto",
            quiet=True,
        ) as stack,
    ):
        pids = stack.pids()
        sous = {name: pid for name, pid in pids.items() if name not in NOT_SOUS}
        meter = CpuMeter(
            {
                "engine": [pids["executor"]],
                "stack": list(sous.values()),
                "postgres": [pids["postgres"]],
                **{f"{PROCESS}{name}": [pid] for name, pid in sous.items()},
            }
        )
        asyncio.run(sous_level(stack, args.concurrency, WARM_UP_RUNS, 0, meter, drain=True))
        print(f"{args.broker} broker, concurrency {args.concurrency}, {args.runs} runs per window (ms per step)")
        for window in range(1, args.windows + 1):
            level = asyncio.run(sous_level(stack, args.concurrency, args.runs, 0, meter, drain=True))
            processes = " ".join(
                f"{name} {ms:.2f}" for name, ms in level["stack_cpu_ms_per_step_by_process"].items() if ms >= 0.05
            )
            print(
                f"window {window}: {level['executions_per_s']:6.2f} exec/s | executor {level['cpu_ms_per_step']:.2f}"
                f" stack {level['stack_cpu_ms_per_step']:.2f} pg {level['postgres_cpu_ms_per_step']:.2f} | {processes}",
                flush=True,
            )


if __name__ == "__main__":
    main()

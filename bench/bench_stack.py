"""Benchmark: how long `make up` takes to be ready, and what the idle stack holds in memory and CPU.

Starts the whole stack the way `make up` does (`sous_local.stack.Stack`: PostgreSQL, the broker, the model
server, every service, the seed), in a state folder of its own and on free ports. The first start creates
the database cluster; it is stopped and started again on the same state folder: that second start is the
warm start (packages installed, cluster initialised), timed from the call until every service answers
ready and the seed is written. The stack is then left idle, and every process it started, with its
children (PostgreSQL's backends), is read with psutil: resident memory (RSS, summed, so memory shared
between processes counts once per process; PSS, which shares it out, where readable) and the CPU spent
while idle.

    make bench-stack
    .venv/bin/python bench/bench_stack.py --broker kafka --idle-s 60
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from sous_local.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".sous" / "bench-stack"
MIB = 1024 * 1024


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def memory_of(processes: list[psutil.Process]) -> tuple[float, float | None]:
    """(RSS MiB, PSS MiB or None when some process's PSS cannot be read)."""
    rss = 0.0
    pss: float | None = 0.0
    for process in processes:
        try:
            rss += process.memory_info().rss / MIB
            if pss is not None:
                pss += process.memory_full_info().pss / MIB
        except psutil.AccessDenied:
            pss = None
        except psutil.NoSuchProcess:
            continue
    return rss, pss


def cpu_s(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def timed_start(stack: Stack) -> float:
    started = time.monotonic()
    stack.start()
    return time.monotonic() - started


def idle_profile(stack: Stack, idle_s: float) -> dict[str, dict[str, Any]]:
    """Per process group: RSS, PSS and the share of one core spent over `idle_s` seconds of idling."""
    groups = {name: tree(pid) for name, pid in stack.pids().items()}
    before = {name: cpu_s(processes) for name, processes in groups.items()}
    time.sleep(idle_s)
    profile: dict[str, dict[str, Any]] = {}
    for name, pid in stack.pids().items():
        processes = tree(pid)
        rss, pss = memory_of(processes)
        profile[name] = {
            "processes": len(processes),
            "rss_mib": rss,
            "pss_mib": pss,
            "idle_cpu_percent": (cpu_s(groups[name]) - before[name]) * 100 / idle_s,
        }
    return profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=["embedded", "kafka"], default="embedded")
    parser.add_argument("--settle-s", type=float, default=10.0, help="idle time before measuring")
    parser.add_argument("--idle-s", type=float, default=30.0, help="the idle window CPU is measured over")
    parser.add_argument("--json", type=Path, help="result file (default .sous/bench-stack/<broker>-<time>.json)")
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sous-bench-stack-") as state:
        first = Stack(Path(state), broker=args.broker, ports="auto", quiet=True)
        try:
            cold_s = timed_start(first)
        finally:
            first.stop()
        stack = Stack(Path(state), broker=args.broker, ports="auto", quiet=True)
        try:
            warm_s = timed_start(stack)
            time.sleep(args.settle_s)
            profile = idle_profile(stack, args.idle_s)
        finally:
            stack.stop()
    rss = sum(p["rss_mib"] for p in profile.values())
    pss_parts = [p["pss_mib"] for p in profile.values()]
    pss = None if None in pss_parts else sum(p for p in pss_parts if p is not None)
    cpu = sum(p["idle_cpu_percent"] for p in profile.values())
    print(f"Sous stack ({args.broker} broker), {os.cpu_count()} cores, load average {load_at_start:.1f} at start")
    print(f"first start (cluster created) {cold_s:.1f} s; warm start (make up, second time) {warm_s:.1f} s")
    print(f"{'process':<12} {'procs':>5} {'RSS MiB':>8} {'PSS MiB':>8} {'idle CPU %':>10}")
    for name, p in sorted(profile.items()):
        pss_text = "-" if p["pss_mib"] is None else f"{p['pss_mib']:.0f}"
        print(f"{name:<12} {p['processes']:>5} {p['rss_mib']:>8.0f} {pss_text:>8} {p['idle_cpu_percent']:>10.1f}")
    print(f"{'total':<12} {'':>5} {rss:>8.0f} {'-' if pss is None else f'{pss:.0f}':>8} {cpu:>10.1f}")
    started_at = datetime.now(UTC)
    path = args.json or RESULTS / f"{args.broker}-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "broker": args.broker,
        "measured_at": started_at.isoformat(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "first_start_s": cold_s,
        "warm_start_s": warm_s,
        "idle_s": args.idle_s,
        "total_rss_mib": rss,
        "total_pss_mib": pss,
        "idle_cpu_percent": cpu,
        "processes": profile,
    }
    path.write_text(json.dumps(document, indent=2))
    print(f"results: {path}")


if __name__ == "__main__":
    main()

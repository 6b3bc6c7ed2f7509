"""`python -m sous_local.chaos [--executions N] [--broker kafka|embedded] [--seed S] [--kills-per-service K]`.

Exit status: 0 when every check holds, 1 when one does not, 2 when the soak could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from sous_local.chaos.infra import ChaosSystem
from sous_local.chaos.soak import Options, Soak
from sous_local.chaos.workload import WorkloadError
from sous_local.stack import StackError


def parse(argv: list[str] | None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        prog="python -m sous_local.chaos",
        description="Chaos soak: mixed executions while every process is killed, PostgreSQL and the broker "
        "restart and database connections are cut; exits non-zero unless nothing was lost, wedged or paid twice.",
    )
    parser.add_argument("--executions", type=int, default=1000, help="executions to run (default 1000)")
    parser.add_argument("--broker", choices=("kafka", "embedded"), default="kafka", help="default: kafka")
    parser.add_argument("--seed", type=int, default=1, help="recipe mix and fault order (default 1)")
    parser.add_argument("--kills-per-service", type=int, default=2, help="SIGKILLs per service (default 2)")
    parser.add_argument("--in-flight", type=int, default=40, help="unfinished executions at most (default 40)")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds after the last fault (default 120)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder (logs) after the run")
    args = parser.parse_args(argv)
    if args.executions < 1 or args.kills_per_service < 1 or args.in_flight < 1:
        parser.error("--executions, --kills-per-service and --in-flight must be at least 1")
    options = Options(
        executions=args.executions,
        broker=args.broker,
        seed=args.seed,
        kills_per_service=args.kills_per_service,
        in_flight=args.in_flight,
        settle_s=args.settle,
    )
    return options, args.keep


def main(argv: list[str] | None = None) -> int:
    options, keep = parse(argv)
    root = Path(tempfile.mkdtemp(prefix="sous-chaos-"))
    system = ChaosSystem(root, options.broker)  # type: ignore[arg-type]
    began = time.monotonic()
    failed_to_run = False
    try:
        system.start()
        soak = Soak(system, options)
        report = asyncio.run(soak.run())
    except (StackError, WorkloadError, OSError, TimeoutError) as error:
        print(f"the soak could not run: {type(error).__name__}: {error}", file=sys.stderr)
        failed_to_run = True
        keep = True
        return 2
    finally:
        system.stop()
        if keep or failed_to_run:
            print(f"state and logs kept in {root}")
        else:
            system.remove_files()
    minutes = (time.monotonic() - began) / 60
    print(f"\nchaos soak: {options.executions} executions on {options.broker}, seed {options.seed}, {minutes:.1f} min")
    print(report.render())
    print("RESULT: " + ("every check holds" if report.ok else "FAILED: nothing may be lost, wedged or paid twice"))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

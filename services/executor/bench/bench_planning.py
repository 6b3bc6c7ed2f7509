"""CPU of the graph work a rerun does (parse, plan twice, descendants) on a dense DAG.

.venv/bin/python services/executor/bench/bench_planning.py --steps 500
"""

from __future__ import annotations

import argparse
import time

from sous_executor.domain.planning import build_plan, parse_steps


def dense(n: int) -> list[dict[str, object]]:
    """Each step depends on every earlier one: n(n-1)/2 edges, the worst case for graph walks."""
    return [
        {"step_id": f"s{i}", "order": i, "agent_id": "a", "depends_on": [f"s{j}" for j in range(i)]} for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    raw = dense(args.steps)
    started = time.process_time()
    for _ in range(args.rounds):
        specs = parse_steps(raw)
        plan = build_plan(specs, {})  # rerun: the rerun set
        plan.descendants(specs[0].step_id)
        build_plan(specs, {})  # request_execution validates the plan again
    per_round = (time.process_time() - started) / args.rounds
    edges = args.steps * (args.steps - 1) // 2
    print(f"{args.steps} steps, {edges} edges: {per_round * 1000:.1f} ms CPU per rerun's graph work")


if __name__ == "__main__":
    main()

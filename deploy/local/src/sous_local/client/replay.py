"""`sous executions replay` and `replay-report`: what-if replays and their diffs."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import quote

from sous_local.client.http import ClientError, Gateway

RECIPES = "/api/workflow-recipes"
POLL_S = 1.0
Handler = Callable[[Gateway, argparse.Namespace, TextIO], int]


def _q(value: str) -> str:
    return quote(value, safe="")


def _dump(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=out)


def prompt_overrides(values: list[str]) -> dict[str, dict[str, str]]:
    """`--prompt STEP=TEXT` flags as step overrides."""
    overrides: dict[str, dict[str, str]] = {}
    for override in values:
        step, sep, prompt = override.partition("=")
        if not sep:
            raise ClientError(f"--prompt expects step_id=new prompt, not {override!r}")
        overrides[step] = {"prompt_template": prompt}
    return overrides


def cmd_executions_replay(gw: Gateway, args: argparse.Namespace, out: TextIO, find_recipe: Callable[..., str]) -> int:
    recipe_id = args.recipe or find_recipe(gw, args.execution)
    body: dict[str, Any] = {}
    if args.revision is not None:
        body["revision"] = args.revision
    if args.prompt:
        body["step_overrides"] = prompt_overrides(args.prompt)
    started = gw.post(f"{RECIPES}/{_q(recipe_id)}/executions/{_q(args.execution)}/replay", body)
    plan = started["plan"]
    if not args.wait:
        if args.json:
            _dump(started, out)
        else:
            print(started["replay_execution_id"], file=out)
        return 0
    print(
        f"replay {started['replay_execution_id']} of {args.execution}: runs {', '.join(plan['rerun_steps']) or '-'}; "
        f"reuses {', '.join(plan['reused_steps']) or '-'}",
        file=out,
    )
    report = wait_for_report(gw, recipe_id, started["replay_execution_id"], args.timeout)
    print_report(report, out, as_json=args.json)
    return 0 if report["status"] == "completed" else 1


def cmd_executions_replay_report(
    gw: Gateway, args: argparse.Namespace, out: TextIO, find_recipe: Callable[..., str]
) -> int:
    recipe_id = args.recipe or find_recipe(gw, args.execution)
    report = gw.get(f"{RECIPES}/{_q(recipe_id)}/executions/{_q(args.execution)}/replay-report")
    print_report(report, out, as_json=args.json)
    return 0


def wait_for_report(gw: Gateway, recipe_id: str, replay_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        report: dict[str, Any] = gw.get(f"{RECIPES}/{_q(recipe_id)}/executions/{_q(replay_id)}/replay-report")
        if report["finished"]:
            return report
        if time.monotonic() > deadline:
            raise ClientError(f"replay {replay_id} did not finish within {timeout_s:g} s (still {report['status']})")
        time.sleep(POLL_S)


def print_report(report: dict[str, Any], out: TextIO, *, as_json: bool = False) -> None:
    if as_json:
        _dump(report, out)
        return
    for step in report["steps"]:
        state = "rerun" if step["rerun"] else "reused"
        change = "changed" if step["output_changed"] else "same"
        print(f"{step['step_id']:<16} {state:<7} {change}", file=out)
        for line in (step.get("diff") or "").splitlines():
            print(f"    {line}", file=out)
    totals = report["totals"]
    delta = totals["delta"]
    quality = delta["quality_score"]
    print(
        f"{report['status']}: tokens {delta['tokens']:+d}, cost {delta['cost_usd']:+.6f} USD, "
        f"duration {delta['duration_ms']:+.0f} ms, quality "
        + (f"{quality:+.4f}" if quality is not None else "not assessed"),
        file=out,
    )


def add_replay_commands(
    executions: Any, common: argparse.ArgumentParser, runner: Callable[[Handler], Any], find_recipe: Callable[..., str]
) -> None:
    p = executions.add_parser(
        "replay", parents=[common], help="what-if: run a recipe revision or new prompts against a past execution"
    )
    p.add_argument("execution", help="the past execution id")
    p.add_argument("--recipe", default=None, help="its recipe (found among recent runs when omitted)")
    p.add_argument("--revision", type=int, default=None, help="the recipe revision to replay (see recipe history)")
    p.add_argument("--prompt", action="append", metavar="STEP=PROMPT", help="override a step's prompt")
    p.add_argument("--wait", "-W", action="store_true", help="wait for the replay and print its diff")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds --wait waits at most")
    p.set_defaults(handler=runner(lambda gw, a, out: cmd_executions_replay(gw, a, out, find_recipe)))
    p = executions.add_parser("replay-report", parents=[common], help="the diff of a replay against its original")
    p.add_argument("execution", help="the replay's execution id")
    p.add_argument("--recipe", default=None, help="its recipe (found among recent runs when omitted)")
    p.set_defaults(handler=runner(lambda gw, a, out: cmd_executions_replay_report(gw, a, out, find_recipe)))

"""`sous recipes|executions|keys ...`: the public API from the command line, through the gateway."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from sous_local.client.http import ClientError, Gateway
from sous_local.client.profile import ProfileError, load_profile
from sous_local.client.replay import add_replay_commands, prompt_overrides

FINISHED = ("completed", "failed", "cancelled")
RECIPES = "/api/workflow-recipes"


def _q(value: str) -> str:
    return quote(value, safe="")


# -- output ------------------------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], out: TextIO) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=out)
        if index == 0:
            print("  ".join("-" * w for w in widths), file=out)


def dump(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=out)


def duration(ms: Any) -> str:
    if ms is None:
        return "-"
    value = float(ms)
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


# -- inputs and recipe files -----------------------------------------------------------------------------


def parse_inputs(pairs: Iterable[str]) -> dict[str, Any]:
    """`k=v` pairs; a value that is valid JSON (number, true, [..], {..}) is taken as JSON, else as text."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ClientError(f"--input expects key=value, not {pair!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, str) or raw.strip() == "":
            value = raw
        data[key.strip()] = value
    return data


def load_recipe_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ClientError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ClientError(f"{path} must hold one recipe (a mapping)")
    return data


def resolve_agents(gateway: Gateway, recipe: dict[str, Any]) -> dict[str, Any]:
    """Steps may name their agent (`agent: Sous sample agent`) instead of giving its id."""
    steps = recipe.get("steps")
    if not isinstance(steps, list) or not any(isinstance(s, dict) and "agent" in s for s in steps):
        return recipe
    page = gateway.get("/api/agents", limit=100)
    by_name = {a["name"]: a["id"] for a in page.get("items", [])}
    resolved = []
    for step in steps:
        if isinstance(step, dict) and "agent" in step:
            step = dict(step)
            name = str(step.pop("agent"))
            if name not in by_name:
                raise ClientError(f"step {step.get('step_id')!r}: no agent named {name!r} in this workspace")
            step.setdefault("agent_id", by_name[name])
        resolved.append(step)
    recipe = dict(recipe)
    recipe["steps"] = resolved
    recipe.setdefault("template_definition", {})
    return recipe


# -- following a run -----------------------------------------------------------------------------------


class Progress:
    """Turns an execution's events into one line per step transition."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.status = ""
        self.finished: dict[str, Any] = {}

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def handle(self, envelope: dict[str, Any]) -> None:
        kind = envelope.get("event_type", "")
        p: dict[str, Any] = envelope.get("payload") or {}
        step = p.get("step_id", "")
        if kind == "ExecutionRequested":
            for reused in p.get("reused_results") or []:
                self.say(f"  {reused.get('step_id', ''):<16} reused from {p.get('rerun_of')}")
        elif kind == "ExecutionStarted":
            self.say(f"  running ({p.get('total_steps', '?')} steps)")
        elif kind == "StepStarted":
            self.say(
                f"  {step:<16} started (attempt {p.get('attempt', 1)}, {p.get('agent_name') or p.get('agent_id')})"
            )
        elif kind == "StepCompleted":
            tokens = (p.get("tokens") or {}).get("total", 0)
            tools = ", ".join(c.get("name", "") for c in p.get("tool_calls") or [])
            extra = f", tools: {tools}" if tools else ""
            self.say(f"  {step:<16} completed in {duration(p.get('duration_ms'))}, {tokens} tokens{extra}")
        elif kind == "StepFailed":
            retry = " (will retry)" if p.get("will_retry") else ""
            self.say(f"  {step:<16} failed on attempt {p.get('attempt', 1)}: {p.get('error')}{retry}")
        elif kind == "StepRetryScheduled":
            self.say(f"  {step:<16} retry {p.get('next_attempt')} in {float(p.get('delay_s') or 0):.1f} s")
        elif kind == "StepSkipped":
            self.say(f"  {step:<16} skipped: {p.get('reason', '')}")
        elif kind == "ExecutionCancelRequested":
            self.say("  cancellation requested")
        elif kind == "ExecutionFinished":
            self.status = str(p.get("status", ""))
            self.finished = p
            totals = p.get("totals") or {}
            self.say(
                f"{self.status}: {totals.get('steps_completed', 0)}/{totals.get('steps_total', 0)} steps, "
                f"{duration(totals.get('duration_ms'))}, {totals.get('tokens', 0)} tokens, "
                f"${float(totals.get('cost_usd') or 0):.6f}"
            )
            if p.get("error"):
                self.say(f"  error: {p['error']}")


def follow(gateway: Gateway, recipe_id: str, execution_id: str, out: TextIO) -> str:
    """Prints the execution's progress from its event stream; returns its final status."""
    progress = Progress(out)
    path = f"{RECIPES}/{_q(recipe_id)}/executions/{_q(execution_id)}/events"
    for event in gateway.events(path):
        if isinstance(event.data, dict):
            progress.handle(event.data)
        if progress.status:
            break
    if not progress.status:  # the stream ended without the finish event: ask once
        status = gateway.get(f"{RECIPES}/{_q(recipe_id)}/executions/{_q(execution_id)}")
        progress.status = str(status.get("status", "unknown"))
        progress.say(f"{progress.status}")
    return progress.status


def start_execution(gateway: Gateway, recipe_id: str, inputs: dict[str, Any], wait_s: float = 20.0) -> Any:
    """POST …/execute; a recipe created a moment ago may not have reached the executor yet: retry 404s."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return gateway.post(f"{RECIPES}/{_q(recipe_id)}/execute", {"input_data": inputs})
        except ClientError as exc:
            if exc.status != 404 or time.monotonic() >= deadline:
                raise
            gateway.get(f"{RECIPES}/{_q(recipe_id)}")  # a 404 here is final: the recipe does not exist
        time.sleep(0.5)


def find_execution_recipe(gateway: Gateway, execution_id: str) -> str:
    active = gateway.get("/api/workflows/active")
    for run in list(active.get("active_workflows") or []) + list(active.get("recipe_runs") or []):
        if run.get("execution_id") == execution_id:
            return str(run["recipe_id"])
    raise ClientError(f"execution {execution_id} is not among the recent ones: pass --recipe")


# -- commands --------------------------------------------------------------------------------------------


def cmd_recipes_list(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    page = gw.get(
        RECIPES,
        search=args.search,
        sort_by=args.sort,
        is_public=None if args.visibility == "public" else "false",
        is_featured="true" if args.featured else None,
        limit=args.limit,
    )
    if args.json:
        dump(page, out)
        return 0
    rows = [
        (
            r["template_id"],
            r["name"],
            len(r.get("steps") or []),
            "-" if r.get("quality_score") is None else f"{r['quality_score']:.2f}",
            r.get("use_count", 0),
            "system" if r.get("is_system") else "",
        )
        for r in page["items"]
    ]
    table(rows, ["ID", "NAME", "STEPS", "QUALITY", "USES", ""], out)
    print(f"{page['total']} recipe(s)", file=out)
    return 0


def cmd_recipes_show(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    recipe = gw.get(f"{RECIPES}/{_q(args.recipe)}")
    if args.json:
        dump(recipe, out)
        return 0
    print(f"{recipe['name']}  ({recipe['template_id']}, revision {recipe['revision']})", file=out)
    if recipe.get("description"):
        print(f"  {recipe['description']}", file=out)
    config = recipe.get("execution_config") or {}
    print(f"  mode {config.get('mode', 'sequential')}, tags {', '.join(recipe.get('tags') or []) or '-'}", file=out)
    for name, spec in (recipe.get("inputs") or {}).items():
        required = " (required)" if spec.get("required") else ""
        default = f", default {spec['default']!r}" if spec.get("default") is not None else ""
        print(f"  input {name}: {spec.get('type', 'string')}{required}{default}", file=out)
    rows = [
        (
            s.get("order"),
            s["step_id"],
            (s.get("agent") or {}).get("name") or s.get("agent_id"),
            s.get("error_handling", "stop"),
            ", ".join(s.get("depends_on") or []) or "-",
        )
        for s in recipe.get("steps") or []
    ]
    table(rows, ["#", "STEP", "AGENT", "ON ERROR", "DEPENDS ON"], out)
    return 0


def cmd_recipes_create(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    recipe = resolve_agents(gw, load_recipe_file(Path(args.file)))
    created = gw.post(RECIPES, recipe)
    if args.json:
        dump(created, out)
    else:
        print(f"created {created['recipe']['template_id']} (revision {created['recipe']['revision']})", file=out)
    return 0


def cmd_recipes_run(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    started = start_execution(gw, args.recipe, parse_inputs(args.input))
    execution_id = started["recipe_execution_id"]
    if not args.follow:
        print(execution_id, file=out)
        return 0
    print(f"execution {execution_id} of {args.recipe} started ({started.get('total_steps')} steps)", file=out)
    status = follow(gw, args.recipe, execution_id, out)
    return 0 if status == "completed" else 1


def cmd_executions_list(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    if args.recipe:
        page = gw.get(f"{RECIPES}/{_q(args.recipe)}/executions", status=args.status, limit=args.limit)
        items = page["items"]
        rows = [
            (
                e["execution_id"],
                e["recipe_id"],
                e["status"],
                f"{sum(1 for s in e.get('step_results') or [] if s.get('status') == 'completed')}/{e['total_steps']}",
                e.get("started_at") or "-",
            )
            for e in items
        ]
    else:
        data = gw.get("/api/workflows/active")
        items = data["recipe_runs"] if not args.active else data["active_workflows"]
        if args.status:
            items = [e for e in items if e["status"] == args.status]
        rows = [
            (
                e["execution_id"],
                e["recipe_id"],
                e["status"],
                f"{e['finished_steps']}/{e['total_steps']}",
                e.get("started_at") or e.get("created_at"),
            )
            for e in items
        ]
    if args.json:
        dump(items, out)
        return 0
    table(rows, ["EXECUTION", "RECIPE", "STATUS", "STEPS", "STARTED"], out)
    return 0


def cmd_executions_show(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    recipe_id = args.recipe or find_execution_recipe(gw, args.execution)
    if args.follow:
        status = follow(gw, recipe_id, args.execution, out)
        return 0 if status == "completed" else 1
    e = gw.get(f"{RECIPES}/{_q(recipe_id)}/executions/{_q(args.execution)}")
    if args.json:
        dump(e, out)
        return 0
    print(f"{e['execution_id']}  {e['recipe_name']} ({e['recipe_id']})  {e['status']}", file=out)
    print(
        f"  {duration(e.get('total_duration_ms'))}, {e.get('total_tokens', 0)} tokens, "
        f"${float(e.get('total_cost_usd') or 0):.6f}, triggered by {e.get('triggered_by')}",
        file=out,
    )
    if e.get("error_message"):
        print(f"  error: {e['error_message']}", file=out)
    rows = [
        (
            s["step_id"],
            s["status"],
            s.get("attempt", 1),
            duration(s.get("duration_ms")),
            (s.get("tokens_used") or {}).get("total", 0),
            ", ".join(c.get("name", "") for c in s.get("tool_calls") or []) or "-",
            (s.get("error") or (s.get("output") or "").replace("\n", " "))[:60],
        )
        for s in e.get("step_results") or []
    ]
    table(rows, ["STEP", "STATUS", "ATTEMPT", "DURATION", "TOKENS", "TOOLS", "OUTPUT / ERROR"], out)
    return 0


def cmd_executions_cancel(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    recipe_id = args.recipe or find_execution_recipe(gw, args.execution)
    answer = gw.post(f"{RECIPES}/{_q(recipe_id)}/executions/{_q(args.execution)}/cancel")
    print(answer.get("message") or answer.get("status"), file=out)
    return 0


def cmd_executions_rerun(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    recipe_id = args.recipe or find_execution_recipe(gw, args.execution)
    body: dict[str, Any] = {}
    if args.from_step:
        body["from_step"] = args.from_step
    if args.prompt:
        body["step_overrides"] = prompt_overrides(args.prompt)
    started = gw.post(f"{RECIPES}/{_q(recipe_id)}/executions/{_q(args.execution)}/rerun", body)
    execution_id = started["recipe_execution_id"]
    if not args.follow:
        print(execution_id, file=out)
        return 0
    print(f"rerun {execution_id} of {args.execution} started", file=out)
    return 0 if follow(gw, recipe_id, execution_id, out) == "completed" else 1


def cmd_keys_list(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    page = gw.get("/api/api-keys")
    if args.json:
        dump(page, out)
        return 0
    rows = [
        (
            k["id"],
            k["name"],
            k["prefix"],
            ",".join(k["scopes"]),
            "revoked" if k.get("revoked_at") else "active",
            k.get("last_used_at") or "-",
        )
        for k in page["items"]
    ]
    table(rows, ["ID", "NAME", "PREFIX", "SCOPES", "STATE", "LAST USED"], out)
    return 0


def cmd_keys_create(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    scopes = args.scope
    if not scopes:
        scopes = [s for s in gw.get("/api/session")["scopes"] if s not in ("keys:admin", "marketplace:moderate")]
    body: dict[str, Any] = {"name": args.name, "scopes": scopes}
    if args.expires_in_days:
        body["expires_in_days"] = args.expires_in_days
    created = gw.post("/api/api-keys", body)
    if args.json:
        dump(created, out)
    else:
        print(f"created key {created['id']} ({', '.join(created['scopes'])}); it is shown only now:", file=out)
        print(created["key"], file=out)
    return 0


def cmd_keys_revoke(gw: Gateway, args: argparse.Namespace, out: TextIO) -> int:
    revoked = gw.call("DELETE", f"/api/api-keys/{_q(args.key_id)}")
    print(f"revoked {revoked['id']} ({revoked['name']})", file=out)
    return 0


# -- wiring into `sous` --------------------------------------------------------------------------------------

Handler = Callable[[Gateway, argparse.Namespace, TextIO], int]


def _client_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection (default: the profile file, then SOUS_* variables)")
    group.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="profile file (default: $SOUS_PROFILE or ~/.config/sous/profile.toml)",
    )
    group.add_argument("--url", default=None, help="the gateway URL ($SOUS_URL)")
    group.add_argument("--workspace", default=None, help="the workspace to act in ($SOUS_WORKSPACE)")
    group.add_argument("--api-key", default=None, help="an API key ($SOUS_API_KEY)")
    group.add_argument("--token", default=None, help="a JWT ($SOUS_TOKEN)")
    parent.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    return parent


def _runner(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            profile = load_profile(
                args.profile,
                flags={"url": args.url, "workspace": args.workspace, "api_key": args.api_key, "token": args.token},
            )
            with Gateway(profile) as gateway:
                return handler(gateway, args, sys.stdout)
        except (ClientError, ProfileError) as exc:
            print(f"sous {args.command}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return run


def add_client_commands(sub: Any) -> None:
    """Adds `recipes`, `executions` and `keys` to the `sous` parser's subcommands."""
    common = _client_options()

    recipes = sub.add_parser("recipes", help="list, show, create and run recipes").add_subparsers(
        dest="action", required=True
    )
    p = recipes.add_parser("list", parents=[common], help="the workspace's recipes")
    p.add_argument("--search", default=None)
    p.add_argument("--sort", choices=["popularity", "created_at", "use_count", "average_rating", "name"], default=None)
    p.add_argument("--visibility", choices=["public", "private"], default="public")
    p.add_argument("--featured", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=_runner(cmd_recipes_list))
    p = recipes.add_parser("show", parents=[common], help="one recipe: inputs and steps")
    p.add_argument("recipe", help="the recipe id (template_id)")
    p.set_defaults(handler=_runner(cmd_recipes_show))
    p = recipes.add_parser("create", parents=[common], help="create a recipe from a YAML or JSON file")
    p.add_argument("-f", "--file", required=True, help="recipe.yaml (steps may name their `agent` instead of agent_id)")
    p.set_defaults(handler=_runner(cmd_recipes_create))
    p = recipes.add_parser("run", parents=[common], help="start a run; --follow prints its progress live")
    p.add_argument("recipe", help="the recipe id (template_id)")
    p.add_argument(
        "--input", "-i", action="append", default=[], metavar="KEY=VALUE", help="repeatable; JSON values allowed"
    )
    p.add_argument("--follow", "-F", action="store_true", help="follow the run's events until it finishes")
    p.set_defaults(handler=_runner(cmd_recipes_run))

    executions = sub.add_parser("executions", help="list, show, cancel, rerun and replay executions").add_subparsers(
        dest="action", required=True
    )
    p = executions.add_parser("list", parents=[common], help="recent runs (or one recipe's with --recipe)")
    p.add_argument("--recipe", default=None)
    p.add_argument("--status", default=None, choices=["pending", "running", "completed", "failed", "cancelled"])
    p.add_argument("--active", action="store_true", help="only runs that have not finished")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=_runner(cmd_executions_list))
    for name, handler, text in (
        ("show", cmd_executions_show, "one execution and its steps (--follow: live)"),
        ("cancel", cmd_executions_cancel, "ask a running execution to stop"),
        ("rerun", cmd_executions_rerun, "run a finished execution again, from a step if given"),
    ):
        p = executions.add_parser(name, parents=[common], help=text)
        p.add_argument("execution", help="the execution id")
        p.add_argument("--recipe", default=None, help="its recipe (found among recent runs when omitted)")
        if name in ("show", "rerun"):
            p.add_argument("--follow", "-F", action="store_true")
        if name == "rerun":
            p.add_argument("--from-step", default=None, help="rerun from this step; earlier results are reused")
            p.add_argument("--prompt", action="append", metavar="STEP=PROMPT", help="override a step's prompt")
        p.set_defaults(handler=_runner(handler))
    add_replay_commands(executions, common, _runner, find_execution_recipe)

    keys = sub.add_parser("keys", help="the workspace's API keys (admins)").add_subparsers(dest="action", required=True)
    p = keys.add_parser("list", parents=[common], help="keys, without their secrets")
    p.set_defaults(handler=_runner(cmd_keys_list))
    p = keys.add_parser("create", parents=[common], help="create a key; it is printed once")
    p.add_argument("--name", required=True)
    p.add_argument("--scope", action="append", default=[], help="repeatable (default: your member scopes)")
    p.add_argument("--expires-in-days", type=int, default=None)
    p.set_defaults(handler=_runner(cmd_keys_create))
    p = keys.add_parser("revoke", parents=[common], help="revoke a key at once")
    p.add_argument("key_id")
    p.set_defaults(handler=_runner(cmd_keys_revoke))

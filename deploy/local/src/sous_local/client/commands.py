"""`sous recipes|executions|keys ...`: the public API from the command line, through the gateway.

Each `cmd_*` takes the gateway, the parsed arguments and the output stream, and returns the exit code;
parser.py wires them into `sous`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from sous_local.client.http import Gateway
from sous_local.client.inputs import load_recipe_file, parse_inputs, resolve_agents
from sous_local.client.output import dump, duration, table
from sous_local.client.replay import prompt_overrides
from sous_local.client.runs import RECIPES, find_execution_recipe, follow, start_execution
from sous_local.client.runs import quote_segment as _q


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

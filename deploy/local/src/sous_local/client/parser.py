"""Wiring the client commands into `sous`: connection options, error handling and the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from sous_local.client.commands import (
    cmd_executions_cancel,
    cmd_executions_list,
    cmd_executions_rerun,
    cmd_executions_show,
    cmd_keys_create,
    cmd_keys_list,
    cmd_keys_revoke,
    cmd_recipes_create,
    cmd_recipes_list,
    cmd_recipes_run,
    cmd_recipes_show,
)
from sous_local.client.http import ClientError, Gateway
from sous_local.client.profile import ProfileError, load_profile
from sous_local.client.replay import add_replay_commands
from sous_local.client.runs import find_execution_recipe

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

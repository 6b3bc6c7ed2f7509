"""`sous`: the local stack from the command line.

sous up [--broker embedded|kafka] [--state-dir .sous]   start everything, in the foreground
sous down                                                stop a stack started from another shell
sous status                                              what runs, and whether it is ready
sous replay                                              re-publish every event store to the broker
sous mint-jwt --sub S --workspace W --role R --ttl N     a development token
sous create-key --name N --scope S --workspace W         an API key, through the running gateway
sous recipes list|show|create -f FILE|run NAME [--input k=v] [--follow]
sous executions list|show|cancel|rerun|replay ID          the client side (see sous_local.client)
sous keys list|create|revoke
sous dlq list|show|redrive|outbox...                     dead letters and parked outbox rows (operators)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from sous_local.client import add_client_commands, default_profile_path, write_profile
from sous_local.dlq_cli import DlqCliError, add_dlq_parser
from sous_local.stack import (
    SERVICES,
    BrokerKind,
    Stack,
    StackError,
    load_or_create_secrets,
    parse_replayed,
    read_stack_file,
    recorded_process,
    stop_running_stack,
    supervisor_alive,
)

DEFAULT_STATE_DIR = ".sous"
DEFAULT_WORKSPACE = "default"
DEV_KEY_FILE = "dev-api-key.json"
# The gateway's scopes (sous_gateway.scopes.ALL_SCOPES), for when the gateway package cannot be imported.


class CliError(Exception):
    pass


def default_state_dir() -> Path:
    return Path(os.environ.get("SOUS_STATE_DIR") or DEFAULT_STATE_DIR)


# -- tokens and keys --------------------------------------------------------------------------------------


def all_scopes() -> tuple[str, ...]:
    from sous_gateway.scopes import ALL_SCOPES

    return ALL_SCOPES


def jwt_secret(state_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """SOUS_JWT_SECRET, else the secret the stack keeps under state_dir (generated there if missing)."""
    source = dict(os.environ if env is None else env)
    return load_or_create_secrets(state_dir, source)["SOUS_JWT_SECRET"]


def mint_jwt(
    secret: str,
    sub: str,
    workspaces: Sequence[str],
    roles: Sequence[str],
    ttl_s: int = 3600,
    env: Mapping[str, str] | None = None,
) -> str:
    """An HS256 token the gateway accepts, with its configured issuer, audience and workspaces claim."""
    source = os.environ if env is None else env
    issuer = source.get("SOUS_JWT_ISSUER", "sous-dev")
    audience = source.get("SOUS_JWT_AUDIENCE", "sous-api")
    workspaces_claim = source.get("SOUS_JWT_WORKSPACES_CLAIM", "workspaces")
    from sous_gateway.tokens import mint_development_token

    return mint_development_token(
        sub,
        list(workspaces),
        list(roles),
        ttl_s,
        secret=secret,
        issuer=issuer,
        audience=audience,
        workspaces_claim=workspaces_claim,
    )


def create_api_key(gateway_url: str, token: str, workspace: str, name: str, scopes: Sequence[str]) -> dict[str, Any]:
    response = httpx.post(
        f"{gateway_url}/api/api-keys",
        headers={"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace},
        json={"name": name, "scopes": list(scopes)},
        timeout=30.0,
    )
    if response.status_code != 201:
        raise CliError(f"creating the API key failed: HTTP {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def development_key(state_dir: Path, gateway_url: str, token: str) -> str:
    """The development API key: the one kept under state_dir while the gateway still accepts it, else a new one."""
    path = state_dir / DEV_KEY_FILE
    try:
        saved = json.loads(path.read_text())
        key = str(saved["key"])
        check = httpx.get(
            f"{gateway_url}/api/api-keys",
            headers={"X-API-Key": key, "X-Workspace-ID": DEFAULT_WORKSPACE},
            timeout=10.0,
        )
        if check.status_code == 200:
            return key
    except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError):
        pass
    created = create_api_key(gateway_url, token, DEFAULT_WORKSPACE, "development key", all_scopes())
    key = str(created["key"])
    path.write_text(json.dumps({"key": key, "id": created.get("id")}))
    path.chmod(0o600)
    return key


# -- commands -----------------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def cmd_up(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    chosen = args.broker or os.environ.get("SOUS_BROKER") or "embedded"
    if chosen not in ("embedded", "kafka"):
        raise CliError(f"SOUS_BROKER must be 'embedded' or 'kafka', not {chosen!r}")
    broker: BrokerKind = "kafka" if chosen == "kafka" else "embedded"
    stack = Stack(state_dir, broker=broker, ready_timeout_s=args.timeout)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_stop)
    started = time.monotonic()
    try:
        try:
            stack.start()
            token = mint_jwt(stack.jwt_secret, "dev-user", [DEFAULT_WORKSPACE], ["admin", "moderator"], 7 * 24 * 3600)
            try:
                key = development_key(stack.state_dir, stack.gateway_url, token)
            except (CliError, httpx.HTTPError) as exc:
                key = f"(none: {exc})"
            if key.startswith("sous_"):  # the client commands (`sous recipes ...`) use this profile
                write_profile(default_profile_path(), url=stack.gateway_url, workspace=DEFAULT_WORKSPACE, api_key=key)
            print(banner(stack, token, key, time.monotonic() - started), flush=True)
            reported: set[str] = set()
            while True:
                time.sleep(1.0)
                for name, process in stack.processes.items():
                    if name not in reported and not process.alive():
                        reported.add(name)
                        print(f"warning: {name} exited; see {process.log_path}", file=sys.stderr, flush=True)
        except (KeyboardInterrupt, _Stop):
            print("\nstopping ...", flush=True)
        finally:
            # A second Ctrl-C must not interrupt the shutdown and leave processes behind.
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stack.stop()
    except StackError as exc:
        print(f"sous up: {exc}", file=sys.stderr)
        return 1
    print("stopped", flush=True)
    return 0


def banner(stack: Stack, token: str, key: str, elapsed_s: float) -> str:
    gateway = stack.gateway_url
    lines = [
        "",
        f"Sous is up ({elapsed_s:.0f}s, broker: {stack.broker}, state: {stack.state_dir})",
        "",
        f"  gateway   {gateway}",
        f"  console   {gateway}/console/   (sign in with the API key or the JWT below)",
        f"  API docs  {gateway}/docs",
        f"  logs      {stack.logs_dir}",
        "",
        f"  development API key (workspace {DEFAULT_WORKSPACE}, all scopes):",
        f"    {key}",
        "",
        f"  development JWT (dev-user, admin + moderator of {DEFAULT_WORKSPACE}, valid 7 days):",
        f"    {token}",
        "",
        "  try:",
        f'    curl -H "X-API-Key: {key}" -H "X-Workspace-ID: {DEFAULT_WORKSPACE}" {gateway}/api/workflows',
        f"    .venv/bin/sous recipes run sample-three-step-chain --input topic=focaccia --follow   "
        f"(profile: {default_profile_path()})",
        "",
        "Ctrl-C (or `make down` from another shell) stops everything.",
    ]
    if stack.replayed_events:
        lines.insert(2, f"  the broker was empty: re-published {stack.replayed_events} events from the event stores")
    return "\n".join(lines)


def cmd_down(args: argparse.Namespace) -> int:
    if not stop_running_stack(args.state_dir):
        print(f"no stack recorded under {args.state_dir}")
        return 0
    print("stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    description = read_stack_file(args.state_dir)
    if description is None:
        print(f"no stack recorded under {args.state_dir}")
        return 1
    running = supervisor_alive(description)
    print(f"stack under {description.get('state_dir')}: {'running' if running else 'supervisor gone'}")
    print(f"  broker {description.get('broker')} at {description.get('kafka_bootstrap')}")
    print(f"  gateway {description.get('gateway_url')}")
    urls: dict[str, str] = description.get("urls") or {}
    all_ready = running
    records: dict[str, Any] = description.get("processes") or {}
    for name in description.get("order") or list(records):
        record = records.get(name)
        alive = recorded_process(record) is not None
        state = "alive" if alive else "not running"
        if name in urls:
            try:
                ready = httpx.get(f"{urls[name]}/readyz", timeout=3.0).status_code == 200
            except httpx.HTTPError:
                ready = False
            state += ", ready" if ready else ", NOT READY"
            all_ready = all_ready and ready
        all_ready = all_ready and alive
        pid = record.get("pid") if isinstance(record, dict) else None
        print(f"  {name:<12} pid {pid}  {state}")
    return 0 if all_ready else 1


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-publishes each service's event store, against the running stack or SOUS_DATABASE_URL/KAFKA_BOOTSTRAP."""
    import subprocess

    description = read_stack_file(args.state_dir)
    env = dict(os.environ)
    if description is not None and supervisor_alive(description):
        env["SOUS_DATABASE_URL"] = str(description["database_url"])
        env["SOUS_KAFKA_BOOTSTRAP"] = str(description["kafka_bootstrap"])
    elif not (env.get("SOUS_DATABASE_URL") and env.get("SOUS_KAFKA_BOOTSTRAP")):
        raise CliError(
            f"no running stack under {args.state_dir} and SOUS_DATABASE_URL / SOUS_KAFKA_BOOTSTRAP are not both set; "
            "`sous up` replays by itself when it finds the broker empty"
        )
    total = 0
    for spec in SERVICES:
        if not spec.replays:
            continue
        result = subprocess.run(
            [sys.executable, "-m", spec.package, "replay"], env=env, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise CliError(f"{spec.name}: replay failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
        count = parse_replayed(result.stdout)
        total += count
        print(f"  {spec.name:<12} re-published {count} events")
    print(f"re-published {total} events")
    return 0


def cmd_mint_jwt(args: argparse.Namespace) -> int:
    secret = jwt_secret(args.state_dir)
    print(mint_jwt(secret, args.sub, args.workspace or [DEFAULT_WORKSPACE], args.role, args.ttl))
    return 0


def cmd_create_key(args: argparse.Namespace) -> int:
    description = read_stack_file(args.state_dir)
    gateway_url = args.gateway_url or (description or {}).get("gateway_url")
    if not gateway_url:
        raise CliError(f"no running stack under {args.state_dir}; start one with `sous up` or pass --gateway-url")
    token = mint_jwt(jwt_secret(args.state_dir), "sous-cli", [args.workspace], ["admin", "moderator"], 300)
    created = create_api_key(str(gateway_url), token, args.workspace, args.name, args.scope or all_scopes())
    print(created["key"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sous", description="The Sous local stack")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where every local file lives (default: $SOUS_STATE_DIR or .sous)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[common], help="start the whole stack in the foreground")
    up.add_argument("--broker", choices=["embedded", "kafka"], default=None, help="default: $SOUS_BROKER or embedded")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each service to be ready")
    up.set_defaults(handler=cmd_up)
    sub.add_parser("down", parents=[common], help="stop a running stack").set_defaults(handler=cmd_down)
    sub.add_parser("status", parents=[common], help="show the running stack").set_defaults(handler=cmd_status)
    sub.add_parser("replay", parents=[common], help="re-publish the event stores").set_defaults(handler=cmd_replay)
    mint = sub.add_parser("mint-jwt", parents=[common], help="print a development JWT")
    mint.add_argument("--sub", default="dev-user")
    mint.add_argument("--workspace", action="append", default=[], help="repeatable (default: default)")
    mint.add_argument("--role", action="append", default=[], help="repeatable: admin, moderator")
    mint.add_argument("--ttl", type=int, default=3600, help="seconds")
    mint.set_defaults(handler=cmd_mint_jwt)
    key = sub.add_parser("create-key", parents=[common], help="create an API key through the running gateway")
    key.add_argument("--name", default="development key")
    key.add_argument("--scope", action="append", default=[], help="repeatable (default: every scope)")
    key.add_argument("--workspace", default=DEFAULT_WORKSPACE)
    key.add_argument("--gateway-url", default=None, help="default: the running stack's gateway")
    key.set_defaults(handler=cmd_create_key)
    add_client_commands(sub)  # recipes, executions, keys: the client side, through the gateway
    add_dlq_parser(sub, common)  # dead letters and parked outbox rows, through the services' admin API
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except (CliError, DlqCliError, StackError, httpx.HTTPError) as exc:
        print(f"sous {args.command}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())

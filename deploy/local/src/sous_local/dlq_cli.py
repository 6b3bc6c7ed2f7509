"""`sous dlq`: dead letters and parked outbox rows, through the services' admin API.

sous dlq list [--topic T] [--pending]              dead letters (all DLQ topics, or one)
sous dlq show ID                                   one dead letter: error, traceback, original record
sous dlq redrive (ID... | --all) [--topic T]       send dead letters back to their topic, in order
sous dlq outbox [--service S]                      parked outbox rows of every service (or one)
sous dlq outbox-show ID --service S                one parked row
sous dlq outbox-resend (ID... | --all) --service S re-send parked rows
sous dlq outbox-discard ID --service S             give up on a parked row (its key's later events flow)

The admin API needs the ops:admin scope, which the gateway never grants: the CLI signs its requests with
the internal secret (SOUS_INTERNAL_SECRET, else the running stack's) and calls the services directly.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sous_local.stack import SERVICES, load_or_create_secrets, read_stack_file
from sous_service.dlq_api import ADMIN_PREFIX, OPS_ADMIN
from sous_service.internal_client import ContextAuth
from sous_service.internal_context import InternalContext

Printer = Callable[[str], None]


class DlqCliError(Exception):
    pass


def _services(args: argparse.Namespace) -> dict[str, str]:
    """Service name -> base URL: `--service-url NAME=URL` entries, else the running stack's services."""
    if args.service_url:
        pairs = [entry.partition("=") for entry in args.service_url]
        if any(not sep or not name or not url for name, sep, url in pairs):
            raise DlqCliError("--service-url takes NAME=URL, e.g. quality=http://127.0.0.1:8003")
        return {name: url.rstrip("/") for name, _, url in pairs}
    description = read_stack_file(args.state_dir) or {}
    urls: dict[str, str] = description.get("urls") or {}
    found = {s.name: urls[s.name] for s in SERVICES if s.replays and s.name in urls}
    if not found:
        raise DlqCliError(f"no running stack under {args.state_dir}; start one with `sous up` or pass --service-url")
    return found


def _secret(args: argparse.Namespace) -> str:
    if os.environ.get("SOUS_INTERNAL_SECRET"):
        return os.environ["SOUS_INTERNAL_SECRET"]
    return load_or_create_secrets(Path(args.state_dir), {})["SOUS_INTERNAL_SECRET"]


def _call(args: argparse.Namespace, service: str, url: str, method: str, path: str, **kw: Any) -> Any:
    context = InternalContext(
        workspace_id="*", user_id="sous-cli", scopes=(OPS_ADMIN,), auth_type="internal", roles=("operator",)
    )
    with httpx.Client(base_url=url, auth=ContextAuth(context, _secret(args), service), timeout=60.0) as client:
        response = client.request(method, f"{ADMIN_PREFIX}{path}", **kw)
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise DlqCliError(f"{service}: HTTP {response.status_code}: {detail}")
    return response.json()


def _one_service(args: argparse.Namespace) -> tuple[str, str]:
    services = _services(args)
    name = getattr(args, "service", None)
    if name is None:
        return next(iter(services.items()))  # the DLQ topics are shared: any service answers
    if name not in services:
        raise DlqCliError(f"unknown service {name!r}; known: {', '.join(services)}")
    return name, services[name]


def cmd_list(args: argparse.Namespace, say: Printer) -> int:
    service, url = _one_service(args)
    params: dict[str, Any] = {"limit": args.limit, "include_redriven": not args.pending}
    if args.topic:
        params["topic"] = args.topic
    body = _call(args, service, url, "GET", "/dlq", params=params)
    for item in body["items"]:
        state = "redriven" if item["redriven"] else "pending"
        say(
            f"{item['id']}  {item['event_type'] or '?'}  key={item['key']}  {item['reason']} x{item['attempts']}  "
            f"{state}  {item['consumer']}: {item['error_type']}: {item['error'][:120]}"
        )
    say(f"{body['total']} dead letter(s)")
    return 0


def cmd_show(args: argparse.Namespace, say: Printer) -> int:
    service, url = _one_service(args)
    say(json.dumps(_call(args, service, url, "GET", f"/dlq/{args.id}"), indent=2))
    return 0


def cmd_redrive(args: argparse.Namespace, say: Printer) -> int:
    if bool(args.ids) == bool(args.all):
        raise DlqCliError("give dead-letter ids or --all")
    service, url = _one_service(args)
    payload: dict[str, Any] = {"ids": args.ids} if args.ids else {"all": True, "topic": args.topic}
    body = _call(args, service, url, "POST", "/dlq/redrive", json=payload)
    for dead_letter_id in body["redriven"]:
        say(f"redriven {dead_letter_id}")
    say(f"{body['count']} dead letter(s) re-driven")
    return 0


def cmd_outbox(args: argparse.Namespace, say: Printer) -> int:
    services = _services(args)
    chosen = [args.service] if args.service else list(services)
    total = 0
    for name in chosen:
        if name not in services:
            raise DlqCliError(f"unknown service {name!r}; known: {', '.join(services)}")
        body = _call(args, name, services[name], "GET", "/outbox/parked", params={"limit": args.limit})
        total += body["total"]
        for row in body["items"]:
            say(
                f"{name}  row {row['id']}  {row['topic']}  key={row['key']}  {row['size']} bytes  "
                f"holds back {row['held_back']}  parked {row['parked_at']}: {row['last_error'][:160]}"
            )
    say(f"{total} parked outbox row(s)")
    return 0


def cmd_outbox_show(args: argparse.Namespace, say: Printer) -> int:
    service, url = _one_service(args)
    say(json.dumps(_call(args, service, url, "GET", f"/outbox/parked/{args.id}"), indent=2))
    return 0


def cmd_outbox_resend(args: argparse.Namespace, say: Printer) -> int:
    if bool(args.ids) == bool(args.all):
        raise DlqCliError("give parked row ids or --all")
    service, url = _one_service(args)
    payload: dict[str, Any] = {"ids": args.ids} if args.ids else {"all": True}
    body = _call(args, service, url, "POST", "/outbox/parked/resend", json=payload)
    say(f"{service}: {body['count']} parked row(s) released to the relay: {body['resent']}")
    return 0


def cmd_outbox_discard(args: argparse.Namespace, say: Printer) -> int:
    service, url = _one_service(args)
    _call(args, service, url, "POST", f"/outbox/parked/{args.id}/discard")
    say(f"{service}: row {args.id} discarded; later events of its key flow again")
    return 0


def add_dlq_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """`sous dlq ...`; each leaf sets `handler` to a function of (args) -> exit code."""
    dlq = sub.add_parser("dlq", parents=[common], help="dead letters and parked outbox rows")
    dlq.add_argument(
        "--service-url", action="append", default=[], help="NAME=URL, repeatable (default: the running stack)"
    )
    leaves = dlq.add_subparsers(dest="dlq_command", required=True)

    def leaf(name: str, handler: Callable[[argparse.Namespace, Printer], int], help_: str) -> Any:
        parser = leaves.add_parser(name, help=help_)
        parser.set_defaults(handler=lambda args: handler(args, print))
        return parser

    listing = leaf("list", cmd_list, "list dead letters")
    listing.add_argument("--topic", default=None, help="an original topic, e.g. sous.quality.v1")
    listing.add_argument("--pending", action="store_true", help="only those not re-driven yet")
    listing.add_argument("--limit", type=int, default=100)
    leaf("show", cmd_show, "show one dead letter").add_argument("id")
    redrive = leaf("redrive", cmd_redrive, "send dead letters back to their topic")
    redrive.add_argument("ids", nargs="*")
    redrive.add_argument("--all", action="store_true", help="every dead letter not re-driven yet")
    redrive.add_argument("--topic", default=None, help="with --all: only this topic")
    outbox = leaf("outbox", cmd_outbox, "list parked outbox rows")
    outbox.add_argument("--service", default=None)
    outbox.add_argument("--limit", type=int, default=100)
    show = leaf("outbox-show", cmd_outbox_show, "show a parked outbox row")
    show.add_argument("id", type=int)
    show.add_argument("--service", required=True)
    resend = leaf("outbox-resend", cmd_outbox_resend, "re-send parked outbox rows")
    resend.add_argument("ids", nargs="*", type=int)
    resend.add_argument("--all", action="store_true")
    resend.add_argument("--service", required=True)
    discard = leaf("outbox-discard", cmd_outbox_discard, "give up on a parked outbox row")
    discard.add_argument("id", type=int)
    discard.add_argument("--service", required=True)

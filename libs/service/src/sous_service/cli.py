"""The command line every service shares: `python -m <package> serve|migrate|replay|rebuild|<its own>`.

A service's `__main__` is `run_cli(SERVICE)` with the service's `ServiceDefinition`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from sous_events.replay import republish_event_store
from sous_service.config import ServiceSettings
from sous_service.db import create_engine, create_session_factory
from sous_service.definition import ServiceDefinition
from sous_service.logs import configure_logging
from sous_service.migrate import upgrade
from sous_service.observability.tracing import configure_tracing
from sous_service.runtime import kafka_config

S = TypeVar("S", bound=ServiceSettings)


def build_parser(definition: ServiceDefinition[Any]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {definition.package}", description=f"The Sous {definition.name}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API (with its outbox relay, consumers and workers)")
    serve.add_argument("--port", type=int)
    serve.add_argument("--host")
    # One process instead of two or three: the local stack starts each service with these (sous_local.stack).
    serve.add_argument("--migrate", action="store_true", help="migrate the database first, in this process")
    sub.add_parser("migrate", help="create the database if missing and migrate it")
    if definition.event_store:
        serve.add_argument(
            "--replay", action="store_true", help="re-publish the event store to the broker before serving"
        )
        sub.add_parser("replay", help="re-publish the event store to the broker")
    if definition.rebuild is not None:
        sub.add_parser("rebuild", help="rebuild the read models from the event store")
    for command in definition.commands:
        own = sub.add_parser(command.name, help=command.help)
        if command.arguments is not None:
            command.arguments(own)
    return parser


# Longer than any client keeps an idle connection (httpx: 5 s, uvicorn's own default too): the client, not the
# server, closes idle ones, so a request never goes out on a connection the server is closing at that instant
# (a reset, httpx.ReadError, to the caller; seen on live event streams under hundreds of concurrent runs).
KEEP_ALIVE_S = 75


def run_cli(definition: ServiceDefinition[S], argv: list[str] | None = None) -> int:
    """Parse the arguments, read the service's settings once, run the command; returns the exit status."""
    args = build_parser(definition).parse_args(argv)
    settings = definition.settings_of()
    configure_logging(settings.service_name, settings.log_level)
    if args.command == "serve":
        if args.migrate:
            definition.migrate(settings)
        if getattr(args, "replay", False):
            # Before the app (and its outbox relay) starts: no new event can overtake a replayed one.
            print(f"re-published {asyncio.run(replay(settings))} events", flush=True)
        serve(definition.app(settings), settings, host=args.host, port=args.port, **definition.server_options)
    elif args.command == "migrate":
        definition.migrate(settings)
    elif args.command == "replay":
        print(f"re-published {asyncio.run(replay(settings))} events")
    elif args.command == "rebuild":
        print(f"rebuilt read models from {asyncio.run(definition.rebuild_from_store(settings))} events")
    else:
        command = next(c for c in definition.commands if c.name == args.command)
        status = command.run(settings, args)
        return status if isinstance(status, int) else 0
    return 0


def serve(app: FastAPI, settings: ServiceSettings, *, host: str | None, port: int | None, **options: Any) -> None:
    configure_tracing(settings.service_name)  # OTEL_TRACES_EXPORTER; off (no SDK) by default
    tune_garbage_collection()
    options = {"timeout_keep_alive": KEEP_ALIVE_S, **options}
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_config=None, **options)


# A young-generation collection every 50,000 allocations instead of 700: a request or an event allocates
# thousands of short-lived objects (pydantic models, rows, dicts), which reference counting frees; the cyclic
# collector found little among them and ran several times per request.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_garbage_collection() -> None:
    """Move what start-up created (modules, the app, its routes) out of the collector's sight, and collect
    the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def replay(settings: ServiceSettings) -> int:
    """Re-publish every event of the service's store (a broker rebuilt from scratch)."""
    engine = create_engine(settings)
    try:
        return await republish_event_store(create_session_factory(engine), kafka_config(settings))
    finally:
        await engine.dispose()


def run_service_cli(
    *,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[ServiceSettings], FastAPI],
    migrations_dir: Path,
    rebuild: Callable[[ServiceSettings], Coroutine[Any, Any, int]] | None = None,
    argv: list[str] | None = None,
) -> None:
    """The command line before ServiceDefinition; kept until every service declares one (use `run_cli`)."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the API, outbox relay and consumers")
    serve_parser.add_argument("--port", type=int)
    serve_parser.add_argument("--host")
    sub.add_parser("migrate", help="create the database if missing and migrate it")
    sub.add_parser("replay", help="re-publish the event store to the broker")
    sub.add_parser("rebuild", help="rebuild the read models from the event store")
    args = parser.parse_args(argv)
    settings = settings_factory()
    configure_logging(settings.service_name, settings.log_level)
    if args.command == "serve":
        serve(app_factory(settings), settings, host=args.host, port=args.port)
    elif args.command == "migrate":
        upgrade(settings, migrations_dir)
    elif args.command == "replay":
        print(f"re-published {asyncio.run(replay(settings))} events")
    elif args.command == "rebuild":
        if rebuild is None:
            parser.error("this service has no read models to rebuild")
        print(f"rebuilt read models from {asyncio.run(rebuild(settings))} events")

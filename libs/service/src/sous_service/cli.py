"""The command line every service shares: serve, migrate, replay, rebuild."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from sous_events.replay import republish_event_store
from sous_service.config import ServiceSettings
from sous_service.db import create_engine, create_session_factory
from sous_service.logs import configure_logging
from sous_service.migrate import upgrade
from sous_service.observability.tracing import configure_tracing
from sous_service.runtime import kafka_config


def run_service_cli(
    *,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[ServiceSettings], FastAPI],
    migrations_dir: Path,
    rebuild: Callable[[ServiceSettings], Coroutine[Any, Any, int]] | None = None,
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API, outbox relay and consumers")
    serve.add_argument("--port", type=int)
    serve.add_argument("--host")
    sub.add_parser("migrate", help="create the database if missing and migrate it")
    sub.add_parser("replay", help="re-publish the event store to the broker")
    sub.add_parser("rebuild", help="rebuild the read models from the event store")
    args = parser.parse_args(argv)
    settings = settings_factory()
    configure_logging(settings.service_name, settings.log_level)
    if args.command == "serve":
        configure_tracing(settings.service_name)  # OTEL_TRACES_EXPORTER; off (no SDK) by default
        app = app_factory(settings)
        uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port, log_config=None)
    elif args.command == "migrate":
        upgrade(settings, migrations_dir)
    elif args.command == "replay":
        print(f"re-published {asyncio.run(_replay(settings))} events")
    elif args.command == "rebuild":
        if rebuild is None:
            parser.error("this service has no read models to rebuild")
        print(f"rebuilt read models from {asyncio.run(rebuild(settings))} events")


async def _replay(settings: ServiceSettings) -> int:
    engine = create_engine(settings)
    try:
        return await republish_event_store(create_session_factory(engine), kafka_config(settings))
    finally:
        await engine.dispose()

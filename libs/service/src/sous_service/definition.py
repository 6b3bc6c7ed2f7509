"""A service, declared: its name, settings class, app factory, migrations, consumers, workers and commands.

Each service's bootstrap declares one `ServiceDefinition`; its `__main__` hands it to
`sous_service.cli.run_cli`, which gives every service the same command line (serve, migrate, replay,
rebuild, plus the service's own commands). The definition is also the one way to get the service's
settings (`settings_of`), its migrations directory (`migrations_dir`: `<service>/migrations`, beside the
package's `src/`), to migrate it (`migrate`, `migrate_async`), to build its runtime with the declared
consumers and background workers (`runtime`) and the app on that runtime (`create_app`).
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_service.config import ServiceSettings
from sous_service.db import create_engine, create_session_factory
from sous_service.migrate import upgrade, upgrade_async
from sous_service.runtime import ConsumerSpec, ServiceRuntime
from sous_service.web import create_service_app

S = TypeVar("S", bound=ServiceSettings)


class BackgroundWorker(Protocol):
    """Something that runs beside the API while the service is up (a scheduler, a sweeper)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class CliCommand(Generic[S]):
    """A command of the service's own (`rewrap-secrets`, `create-key`): its arguments and what it runs."""

    name: str
    help: str
    run: Callable[[S, argparse.Namespace], object]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


def package_migrations_dir(package: str) -> Path:
    """`<service>/migrations` for the package at `<service>/src/<package>`: the one place migrations live."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {package!r} is not importable")
    return Path(next(iter(spec.submodule_search_locations))).resolve().parents[1] / "migrations"


@dataclass(frozen=True)
class ServiceDefinition(Generic[S]):
    name: str
    package: str
    settings: type[S]
    app: Callable[[S], FastAPI]
    consumers: Sequence[Callable[[S, ServiceRuntime], ConsumerSpec]] = ()
    workers: Sequence[Callable[[S, ServiceRuntime], BackgroundWorker]] = ()
    # Rebuilds the read models from the event store, given the service's sessions; returns the events replayed.
    rebuild: Callable[[async_sessionmaker[AsyncSession]], Coroutine[Any, Any, int]] | None = None
    # Services with an event store can re-publish it (`replay`); the gateway keeps none.
    event_store: bool = True
    commands: Sequence[CliCommand[S]] = ()
    # Extra uvicorn options for `serve` (the gateway turns off proxy headers and the server header).
    server_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def migrations_dir(self) -> Path:
        return package_migrations_dir(self.package)

    def settings_of(self, settings: ServiceSettings | None = None) -> S:
        """The service's own settings: read from `SOUS_*` when none are given, kept when they already are
        the service's class, else carried over field by field (defaults of the service for the rest)."""
        if settings is None:
            return self.settings()
        if isinstance(settings, self.settings):
            return settings
        return self.settings.model_validate(settings.model_dump(exclude_unset=True), by_name=True)

    def build_app(self, settings: ServiceSettings | None = None) -> FastAPI:
        return self.app(self.settings_of(settings))

    def runtime(self, settings: S) -> ServiceRuntime:
        """Engine, sessions, event store and relay, with the declared consumers and background workers."""
        runtime = ServiceRuntime.create(settings)
        for consumer in self.consumers:
            runtime.add_consumer(consumer(settings, runtime))
        for make_worker in self.workers:
            worker = make_worker(settings, runtime)
            runtime.on_start(worker.start)
            runtime.on_stop(worker.stop)
        return runtime

    def create_app(self, settings: S, runtime: ServiceRuntime, *, title: str, description: str) -> FastAPI:
        """The service's app on its runtime (`app.state.runtime`): error mapping, the signed context, health
        and readiness of the database and broker; the app's lifespan starts and stops the runtime."""
        app = create_service_app(
            title=title,
            description=description,
            internal_secret=settings.internal_secret,
            context_max_age_s=settings.internal_context_max_age_s,
            service_name=self.name,
            lifespan=runtime.lifespan,
            readiness=runtime.readiness(),
        )
        app.state.runtime = runtime
        return app

    async def rebuild_from_store(self, settings: ServiceSettings) -> int:
        """Run the declared rebuild on the service's own database; returns the events replayed."""
        if self.rebuild is None:
            raise LookupError(f"the {self.name} service has no read models to rebuild")
        engine = create_engine(settings)
        try:
            return await self.rebuild(create_session_factory(engine))
        finally:
            await engine.dispose()

    def migrate(self, settings: ServiceSettings) -> None:
        """Create the service's database if missing, then upgrade it to head (blocking, for the CLI)."""
        upgrade(settings, self.migrations_dir)

    async def migrate_async(self, settings: ServiceSettings) -> None:
        """The same from inside a running event loop (tests, the embedded stack)."""
        await upgrade_async(settings, self.migrations_dir)

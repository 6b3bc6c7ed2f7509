"""ServiceDefinition and the one command line: settings, migrations, runtime and the commands it offers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from sous_events.events import AgentMetricsUpdated
from sous_service import cli
from sous_service.config import ServiceSettings
from sous_service.definition import CliCommand, ServiceDefinition, package_migrations_dir
from sous_service.runtime import ConsumerSpec, ServiceRuntime

pytestmark = pytest.mark.unit


class ToySettings(ServiceSettings):
    service_name: str = "toy"
    port: int = 8099
    database_name: str = "sous_toy"
    greeting: str = "hello"


class Worker:
    def __init__(self) -> None:
        self.log: list[str] = []

    async def start(self) -> None:
        self.log.append("start")

    async def stop(self) -> None:
        self.log.append("stop")


def toy(**over: Any) -> ServiceDefinition[ToySettings]:
    def app(settings: ToySettings) -> FastAPI:
        return FastAPI(title=settings.greeting)

    fields: dict[str, Any] = {"name": "toy", "package": "sous_catalog", "settings": ToySettings, "app": app}
    return ServiceDefinition(**{**fields, **over})


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("SOUS_")]:
        monkeypatch.delenv(name)


def test_settings_of_reads_keeps_or_carries_over_into_the_services_class(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = toy()
    monkeypatch.setenv("SOUS_GREETING", "from the environment")
    assert definition.settings_of().greeting == "from the environment"
    own = ToySettings(greeting="mine")
    assert definition.settings_of(own) is own
    shared = ServiceSettings(env="test", database_url="postgresql+asyncpg://db:5432/x", kafka_bootstrap="k:1")
    converted = definition.settings_of(shared)
    assert isinstance(converted, ToySettings)
    assert (converted.env, converted.database_url, converted.kafka_bootstrap) == (
        "test",
        "postgresql+asyncpg://db:5432/x",
        "k:1",
    )
    # What the shared settings left at their defaults takes the service's own defaults.
    assert (converted.service_name, converted.port, converted.database_name) == ("toy", 8099, "sous_toy")


def test_migrations_live_beside_the_packages_src() -> None:
    import sous_catalog

    root = Path(sous_catalog.__file__).resolve().parents[2]
    assert package_migrations_dir("sous_catalog") == root / "migrations"
    assert (root / "migrations" / "env.py").is_file()
    assert toy().migrations_dir == root / "migrations"
    with pytest.raises(LookupError):
        package_migrations_dir("sous_no_such_package")


def test_the_runtime_carries_the_declared_consumers_and_workers() -> None:
    worker = Worker()

    async def handle(session: Any, envelope: Any, payload: Any) -> None:
        return None

    def consumer(settings: ToySettings, runtime: ServiceRuntime) -> ConsumerSpec:
        return ConsumerSpec(name=f"{settings.service_name}-group", handlers={AgentMetricsUpdated: handle})

    definition = toy(consumers=[consumer], workers=[lambda settings, runtime: worker])
    runtime = definition.runtime(ToySettings())
    assert [c.name for c in runtime.consumers] == ["toy-group"]
    assert runtime.consumers[0].topics == ["sous.quality.v1"]  # from the registry
    assert runtime.background == [worker.start] and runtime.stoppers == [worker.stop]


def test_the_command_line_offers_what_the_service_has() -> None:
    async def rebuild(sessions: Any) -> int:
        return 0

    def commands(definition: ServiceDefinition[Any]) -> set[str]:
        parser = cli.build_parser(definition)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return set(sub.choices)

    assert commands(toy()) == {"serve", "migrate", "replay"}
    assert commands(toy(rebuild=rebuild)) == {"serve", "migrate", "replay", "rebuild"}
    gateway_like = toy(event_store=False, commands=[CliCommand("mint-jwt", "print a token", lambda s, a: None)])
    assert commands(gateway_like) == {"serve", "migrate", "mint-jwt"}


def test_each_command_runs_with_the_services_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, Any]] = []

    async def rebuild(sessions: Any) -> int:
        seen.append(("rebuild", type(sessions).__name__))
        return 7

    def own(settings: ToySettings, args: argparse.Namespace) -> int:
        seen.append(("own", (settings.greeting, args.times)))
        return 3

    command = CliCommand("greet", "greet", own, arguments=lambda p: p.add_argument("--times", type=int, default=1))
    definition = toy(rebuild=rebuild, commands=[command])
    monkeypatch.setenv("SOUS_GREETING", "hi")
    monkeypatch.setattr(ServiceDefinition, "migrate", lambda self, settings: seen.append(("migrate", settings.port)))
    monkeypatch.setattr(cli, "serve", lambda app, settings, **kw: seen.append(("serve", (app.title, kw["port"]))))

    assert cli.run_cli(definition, ["migrate"]) == 0
    assert cli.run_cli(definition, ["serve", "--port", "9001"]) == 0
    assert cli.run_cli(definition, ["rebuild"]) == 0
    assert cli.run_cli(definition, ["greet", "--times", "2"]) == 3
    assert seen == [("migrate", 8099), ("serve", ("hi", 9001)), ("rebuild", "async_sessionmaker"), ("own", ("hi", 2))]


def test_serve_can_migrate_and_replay_first_in_its_own_process(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def replay(settings: Any) -> int:
        seen.append("replay")
        return 4

    monkeypatch.setattr(ServiceDefinition, "migrate", lambda self, settings: seen.append("migrate"))
    monkeypatch.setattr(cli, "replay", replay)
    monkeypatch.setattr(cli, "serve", lambda app, settings, **kw: seen.append("serve"))

    assert cli.run_cli(toy(), ["serve", "--migrate", "--replay"]) == 0
    assert seen == ["migrate", "replay", "serve"]
    seen.clear()
    assert cli.run_cli(toy(), ["serve"]) == 0
    assert seen == ["serve"]
    with pytest.raises(SystemExit):  # a service without an event store has nothing to re-publish
        cli.run_cli(toy(event_store=False), ["serve", "--replay"])


def test_the_app_runs_on_the_runtime_and_answers_health() -> None:
    from fastapi.testclient import TestClient

    definition = toy()
    settings = ToySettings()
    runtime = definition.runtime(settings)
    app = definition.create_app(settings, runtime, title="Toy", description="A toy service.")
    assert app.state.runtime is runtime and app.title == "Toy"
    assert TestClient(app).get("/healthz").json() == {"status": "ok"}


async def test_a_service_without_read_models_has_nothing_to_rebuild() -> None:
    with pytest.raises(LookupError):
        await toy().rebuild_from_store(ToySettings())


def test_served_connections_stay_open_longer_than_a_client_keeps_them_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **options: seen.update(options))
    settings = ServiceSettings()
    cli.serve(FastAPI(), settings, host=None, port=None)
    assert seen["timeout_keep_alive"] > 5.0 * 2  # httpx drops an idle connection after 5 s
    cli.serve(FastAPI(), settings, host=None, port=None, timeout_keep_alive=7)
    assert seen["timeout_keep_alive"] == 7

"""The whole system on one machine: PostgreSQL, a broker, the offline model server and every service.

`Stack.start()` brings up (or reuses, when `SOUS_DATABASE_URL` / `SOUS_KAFKA_BOOTSTRAP` are set) the
infrastructure, creates databases and topics, then starts each service as its own process, which migrates
its database (and re-publishes its event store when the broker was found empty) before it serves, and waits
until every `/readyz` answers 200. `Stack.stop()` stops them all in reverse order. `state_dir/stack.json`
describes a running stack so that another shell (`sous down`, `sous status`) can find and stop it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from sous_local.ports import free_port
from sous_local.processes import ManagedProcess, port_is_free, tail, wait_until_ready
from sous_local.provisioning import (
    SECRETS_FILE,
    broker_defaults,
    broker_messages,
    create_databases,
    ensure_topics,
    event_store_sizes,
    load_or_create_secrets,
    parse_replayed,
    replayed_in_log,
    run_service_command,
    start_broker,
    start_postgres,
)
from sous_local.stack_file import (
    STACK_FILE,
    pid_record,
    read_stack_file,
    recorded_process,
    refuse_if_running,
    remove_stack_file,
    stop_recorded_processes,
    stop_running_stack,
    supervisor_alive,
    write_stack_file,
)
from sous_local.stack_spec import MODEL_SERVER, SERVICE_BY_NAME, SERVICES, BrokerKind, ServiceSpec, StackError
from sous_local.sync import run_async

# The stack's public names, importable from here as before the helpers moved to their own modules.
__all__ = [
    "MODEL_SERVER",
    "SECRETS_FILE",
    "SERVICES",
    "SERVICE_BY_NAME",
    "STACK_FILE",
    "BrokerKind",
    "ManagedProcess",
    "ServiceSpec",
    "Stack",
    "StackError",
    "load_or_create_secrets",
    "parse_replayed",
    "port_is_free",
    "read_stack_file",
    "recorded_process",
    "refuse_if_running",
    "stop_recorded_processes",
    "stop_running_stack",
    "supervisor_alive",
    "tail",
]


class Stack:
    """Every Sous process on this machine, under one state folder."""

    def __init__(
        self,
        state_dir: Path,
        *,
        broker: BrokerKind = "embedded",
        env: Mapping[str, str] | None = None,
        durable_postgres: bool = True,
        ports: Mapping[str, int] | Literal["auto"] | None = None,
        ready_timeout_s: float = 180.0,
        quiet: bool = False,
    ) -> None:
        if broker not in ("embedded", "kafka"):
            raise ValueError(f"broker must be 'embedded' or 'kafka', not {broker!r}")
        self.state_dir = Path(state_dir).resolve()
        self.broker = broker
        self.durable_postgres = durable_postgres
        self.ready_timeout_s = ready_timeout_s
        self.quiet = quiet
        self._source_env: dict[str, str] = {**os.environ, **(env or {})}
        self.ports = self._choose_ports(ports)
        # Each service's Prometheus metrics (GET /metrics) on a port of its own; SOUS_<SVC>_METRICS_PORT or free.
        self.metrics_ports = {
            spec.name: int(self._source_env.get(f"SOUS_{spec.name.upper()}_METRICS_PORT") or free_port())
            for spec in SERVICES
        }
        self.logs_dir = self.state_dir / "logs"
        self.processes: dict[str, ManagedProcess] = {}
        self._postgres: Any = None
        self._broker: Any = None
        self.database_url = ""
        self.kafka_bootstrap = ""
        self.model_port = 0
        self.internal_secret = ""
        self.jwt_secret = ""
        self.replayed_events = 0
        # Services that re-publish their event store when they next start (the broker was found empty).
        self._replay_on_start: set[str] = set()
        self._log_marks: dict[str, int] = {}
        self._common_env: dict[str, str] = {}
        self._started = False

    # -- public properties -------------------------------------------------------------------------------

    @property
    def urls(self) -> dict[str, str]:
        return {spec.name: f"http://127.0.0.1:{self.ports[spec.name]}" for spec in SERVICES}

    @property
    def metrics_urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}/metrics" for name, port in self.metrics_ports.items()}

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    @property
    def model_url(self) -> str:
        """The model server's OpenAI-compatible base URL (ends with /v1)."""
        return f"http://127.0.0.1:{self.model_port}/v1"

    @property
    def env(self) -> dict[str, str]:
        """The environment every service gets (each also gets SOUS_PORT set to its own port)."""
        return dict(self._common_env)

    @property
    def stack_file(self) -> Path:
        return self.state_dir / STACK_FILE

    # -- start and stop ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        refuse_if_running(self.state_dir)
        self._check_ports()
        self._started = True
        try:
            # The model server starts while the rest comes up; it is waited for before the seed.
            self._start_model_server()
            self._start_infrastructure()
            self._prepare_environment()
            self._write_stack_file()
            self._create_databases_and_topics()
            self._replay_if_broker_empty()
            # All at once: the gateway needs no upstream to start, only to answer ready (it asks theirs).
            self._say(f"starting {', '.join(spec.name for spec in SERVICES)} ...")
            for spec in SERVICES:
                self._launch(spec)
            for spec in SERVICES:
                self._wait_ready(spec.name)
            self._count_replayed()
            self._wait_http(MODEL_SERVER, f"http://127.0.0.1:{self.model_port}/healthz")
            from sous_local.seed import seed_stack

            seed_stack(self, self._say)  # the default workspace's sample agent and system recipes
            self._write_stack_file()
        except BaseException:
            self.stop()
            raise

    def stop(self, grace_s: float = 10.0) -> None:
        """Stops every process in reverse start order, PostgreSQL last; idempotent."""
        for name in reversed(list(self.processes)):
            self.processes[name].stop(grace_s)
        if self._broker is not None:
            with contextlib.suppress(Exception):
                self._broker.stop()
            self._broker = None
        if self._postgres is not None:
            with contextlib.suppress(Exception):
                self._postgres.stop()
            self._postgres = None
        self._remove_stack_file()
        self._started = False

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill(self, name: str) -> None:
        """SIGKILL one process (a service, or "model")."""
        self._process(name).kill()

    def start_service(self, name: str) -> None:
        """Start a stopped or killed service again on the same port and wait until it is ready."""
        managed = self._process(name)
        if managed.alive():
            managed.stop()
        if name == MODEL_SERVER:
            managed.start(self._common_env)
            self._wait_http(name, f"http://127.0.0.1:{self.model_port}/healthz")
        else:
            self._launch(SERVICE_BY_NAME[name])
            self._wait_ready(name)
        self._write_stack_file()

    def pids(self) -> dict[str, int]:
        """Every process the stack started (services, model server, broker, PostgreSQL), by name."""
        found = {name: p.pid for name, p in self.processes.items() if p.pid is not None}
        for name, thing in (("broker", self._broker), ("postgres", self._postgres)):
            process = getattr(thing, "process", None) if thing is not None else None
            if process is not None:
                found[name] = process.pid
        return found

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    # -- steps ---------------------------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    def _choose_ports(self, ports: Mapping[str, int] | Literal["auto"] | None) -> dict[str, int]:
        chosen: dict[str, int] = {}
        for spec in SERVICES:
            if ports == "auto":
                chosen[spec.name] = free_port()
            elif ports is not None and spec.name in ports:
                chosen[spec.name] = int(ports[spec.name])
            else:
                chosen[spec.name] = int(self._source_env.get(spec.port_variable) or spec.default_port)
        return chosen

    def _check_ports(self) -> None:
        taken = [(name, port) for name, port in self.ports.items() if not port_is_free(port)]
        if taken:
            listing = ", ".join(f"{name} on {port}" for name, port in taken)
            hint = " ".join(f"{SERVICE_BY_NAME[name].port_variable}=<port>" for name, _ in taken)
            raise StackError(
                f"ports already in use: {listing}. Stop whatever listens there (`sous down` if it is an "
                f"earlier stack) or choose other ports: {hint} make up"
            )

    def _start_infrastructure(self) -> None:
        external_db = self._source_env.get("SOUS_DATABASE_URL", "")
        if external_db:
            self.database_url = external_db
            self._say("PostgreSQL: using SOUS_DATABASE_URL")
        else:
            self._postgres = start_postgres(self.state_dir / "postgres", self.durable_postgres, self._say)
            self.database_url = self._postgres.url
        external_broker = self._source_env.get("SOUS_KAFKA_BOOTSTRAP", "")
        if external_broker:
            self.kafka_bootstrap = external_broker
            self._say("broker: using SOUS_KAFKA_BOOTSTRAP")
            return
        self._broker = start_broker(self.broker, self.state_dir, self._say)
        self.kafka_bootstrap = self._broker.bootstrap

    def _start_model_server(self) -> None:
        self._say("starting the offline model server ...")
        self.model_port = free_port()
        managed = ManagedProcess(
            MODEL_SERVER,
            [sys.executable, "-m", "sous_local.model_server", "--host", "127.0.0.1", "--port", str(self.model_port)],
            self.log_path(MODEL_SERVER),
            self.model_port,
        )
        self.processes[MODEL_SERVER] = managed
        managed.start(self._source_env)

    def _prepare_environment(self) -> None:
        found = load_or_create_secrets(self.state_dir, self._source_env)
        self.internal_secret = found["SOUS_INTERNAL_SECRET"]
        self.jwt_secret = found["SOUS_JWT_SECRET"]
        env = {**broker_defaults(self.broker, started=self._broker is not None), **self._source_env}
        env.setdefault("SOUS_ENV", "development")
        env.setdefault("SOUS_MODEL_BASE_URL", self.model_url)
        env.update(found)
        env["SOUS_DATABASE_URL"] = self.database_url
        env["SOUS_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        for spec in SERVICES:
            env[spec.port_variable] = str(self.ports[spec.name])
            if spec.name != "gateway":
                env[spec.url_variable] = self.urls[spec.name]
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._common_env = env

    def _service_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = dict(self._common_env)
        env["SOUS_PORT"] = str(self.ports[spec.name])
        env["SOUS_METRICS_PORT"] = str(self.metrics_ports[spec.name])
        return env

    def _database_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for spec in SERVICES:
            override = self._source_env.get(f"SOUS_{spec.name.upper()}_DATABASE_NAME", "")
            names[spec.name] = override or spec.database_name
        return names

    def _create_databases_and_topics(self) -> None:
        self._say("creating databases and topics ...")
        run_async(create_databases(self.database_url, self._database_names().values()))
        run_async(ensure_topics(self.kafka_bootstrap))

    def _run_command(self, spec: ServiceSpec, command: str, timeout_s: float) -> str:
        """`python -m <pkg> <command>`, output appended to the service's log; returns the output."""
        return run_service_command(spec, command, self._service_env(spec), self.log_path(spec.name), timeout_s)

    def _replay_if_broker_empty(self) -> None:
        databases = {spec.name: self._database_names()[spec.name] for spec in SERVICES if spec.replays}
        sizes = run_async(event_store_sizes(self.database_url, databases))
        if not any(sizes.values()):
            return
        if run_async(broker_messages(self.kafka_bootstrap)) > 0:
            return
        self._say("the broker is empty but the event stores are not: the services re-publish them as they start")
        self._replay_on_start = {name for name, size in sizes.items() if size > 0}

    def _count_replayed(self) -> None:
        if self._replay_on_start:
            # Each service printed its count in its log before it served (this start's part of the log).
            marks, self._replay_on_start, self._log_marks = self._log_marks, set(), {}
            self.replayed_events = sum(replayed_in_log(self.log_path(name), mark) for name, mark in marks.items())
            self._say(f"broker was empty: re-published {self.replayed_events} events")

    def replay(self, names: Iterable[str] | None = None) -> int:
        """Runs `python -m <pkg> replay` for each service (all that keep an event store by default)."""
        wanted = list(names) if names is not None else [spec.name for spec in SERVICES if spec.replays]
        total = 0
        for name in wanted:
            output = self._run_command(SERVICE_BY_NAME[name], "replay", 600)
            total += parse_replayed(output)
        return total

    def _launch(self, spec: ServiceSpec) -> None:
        # The service migrates (and re-publishes if asked) in its own process before it serves: one start-up.
        command = [sys.executable, "-m", spec.package, "serve", "--migrate"]
        if spec.name in self._replay_on_start:
            command.append("--replay")
            log = self.log_path(spec.name)
            self._log_marks[spec.name] = log.stat().st_size if log.is_file() else 0
        managed = ManagedProcess(spec.name, command, self.log_path(spec.name), self.ports[spec.name])
        self.processes[spec.name] = managed
        managed.start(self._service_env(spec))

    def _process(self, name: str) -> ManagedProcess:
        if name not in self.processes:
            raise KeyError(f"no process named {name!r}; known: {', '.join(self.processes)}")
        return self.processes[name]

    def _wait_ready(self, name: str) -> None:
        self._wait_http(name, f"{self.urls[name]}/readyz")
        self._say(f"  {name} ready on {self.urls[name]}")

    def _wait_http(self, name: str, url: str) -> None:
        wait_until_ready(self.processes[name], url, self.ready_timeout_s)

    # -- the stack file ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        pids = self.pids()
        return {
            "supervisor": pid_record(os.getpid()),
            "state_dir": str(self.state_dir),
            "broker": self.broker,
            "gateway_url": self.gateway_url,
            "urls": self.urls,
            "metrics_urls": self.metrics_urls,
            "model_url": self.model_url,
            "database_url": self.database_url,
            "kafka_bootstrap": self.kafka_bootstrap,
            "logs_dir": str(self.logs_dir),
            # Start order: `sous down` stops them in reverse.
            "processes": {name: pid_record(pid) for name, pid in pids.items()},
            "order": [name for name in ("postgres", "broker") if name in pids]
            + [name for name in self.processes if name in pids],
        }

    def _write_stack_file(self) -> None:
        write_stack_file(self.stack_file, self.describe())

    def _remove_stack_file(self) -> None:
        remove_stack_file(self.stack_file)

"""The whole system on one machine: PostgreSQL, a broker, the offline model server and every service.

`Stack.start()` brings up (or reuses, when `SOUS_DATABASE_URL` / `SOUS_KAFKA_BOOTSTRAP` are set) the
infrastructure, creates databases and topics, migrates every database, re-publishes the event stores when
it finds the broker empty, then starts each service as its own process and waits until every `/readyz`
answers 200. `Stack.stop()` stops them all in reverse order. `state_dir/stack.json` describes a running
stack so that another shell (`sous down`, `sous status`) can find and stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import psutil

from sous_local.ports import free_port
from sous_local.sync import run_async

BrokerKind = Literal["embedded", "kafka"]
T = TypeVar("T")

STACK_FILE = "stack.json"
SECRETS_FILE = "secrets.json"
MODEL_SERVER = "model"


class StackError(RuntimeError):
    """The stack could not start; the message names the part that failed and why."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    default_port: int
    database_name: str
    replays: bool = True

    @property
    def port_variable(self) -> str:
        return f"SOUS_{self.name.upper()}_PORT"

    @property
    def url_variable(self) -> str:
        return f"SOUS_{self.name.upper()}_URL"


# Start order: the gateway last (its readiness includes every upstream's).
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("catalog", "sous_catalog", 8001, "sous_catalog"),
    ServiceSpec("executor", "sous_executor", 8002, "sous_executor"),
    ServiceSpec("quality", "sous_quality", 8003, "sous_quality"),
    ServiceSpec("marketplace", "sous_marketplace", 8004, "sous_marketplace"),
    ServiceSpec("gateway", "sous_gateway", 8000, "sous_gateway", replays=False),
)
SERVICE_BY_NAME: dict[str, ServiceSpec] = {spec.name: spec for spec in SERVICES}


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, env: Mapping[str, str], cwd: Path | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the process and everything in its group, at once."""
        if self.process is None:
            return
        _signal_group(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL after the grace period; reaps the process."""
        if self.process is None:
            return
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in the group (children of the service) goes too.
        _signal_group(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def load_or_create_secrets(state_dir: Path, source: Mapping[str, str]) -> dict[str, str]:
    """SOUS_INTERNAL_SECRET, SOUS_JWT_SECRET and SOUS_SECRETS_KEK: from the environment, else kept under state_dir.

    A secret generated once is reused by every later start, so API keys (hashed with a pepper derived from
    the internal secret) and tokens minted earlier keep working.
    """
    path = state_dir / SECRETS_FILE
    saved: dict[str, str] = {}
    if path.is_file():
        with contextlib.suppress(ValueError, OSError):
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                saved = {str(k): str(v) for k, v in loaded.items()}
    changed = False
    result: dict[str, str] = {}
    # SOUS_SECRETS_KEK wraps the data keys of workspace secrets (the executor's secret store).
    for variable in ("SOUS_INTERNAL_SECRET", "SOUS_JWT_SECRET", "SOUS_SECRETS_KEK"):
        if source.get(variable):
            result[variable] = source[variable]
            continue
        if not saved.get(variable):
            saved[variable] = secrets.token_urlsafe(32)
            changed = True
        result[variable] = saved[variable]
    if changed:
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=2))
        path.chmod(0o600)
    return result


def _database_url_for(server_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def _create_databases(server_url: str, names: Iterable[str]) -> None:
    from sous_service.db import create_database

    for name in names:
        await create_database(server_url, name, timeout_s=10)


async def _event_store_sizes(server_url: str, databases: Mapping[str, str]) -> dict[str, int]:
    import asyncpg

    sizes: dict[str, int] = {}
    for name, database in databases.items():
        try:
            conn = await asyncpg.connect(_database_url_for(server_url, database), timeout=10)
        except asyncpg.InvalidCatalogNameError:
            sizes[name] = 0
            continue
        try:
            exists = await conn.fetchval("SELECT to_regclass('public.event_store') IS NOT NULL")
            sizes[name] = int(await conn.fetchval("SELECT count(*) FROM event_store")) if exists else 0
        finally:
            await conn.close()
    return sizes


async def _ensure_topics(bootstrap: str) -> None:
    from sous_events.kafka import KafkaConfig, ensure_topics

    await asyncio.wait_for(ensure_topics(KafkaConfig(bootstrap)), 60)


async def _broker_messages(bootstrap: str) -> int:
    from sous_events.kafka import KafkaConfig, total_messages
    from sous_events.topics import ALL_TOPICS

    return await asyncio.wait_for(total_messages(KafkaConfig(bootstrap), ALL_TOPICS), 60)


def _pid_record(pid: int | None) -> dict[str, float | int] | None:
    if pid is None:
        return None
    try:
        return {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    except psutil.Error:
        return None


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
            self._start_infrastructure()
            self._start_model_server()
            self._prepare_environment()
            self._write_stack_file()
            self._create_databases_and_topics()
            self._migrate()
            self._replay_if_broker_empty()
            services = [spec for spec in SERVICES if spec.name != "gateway"]
            self._say(f"starting {', '.join(spec.name for spec in services)}, then the gateway ...")
            for spec in services:
                self._launch(spec)
            for spec in services:
                self._wait_ready(spec.name)
            self._launch(SERVICE_BY_NAME["gateway"])
            self._wait_ready("gateway")
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
            from sous_local.postgres import EmbeddedPostgres

            self._say("starting embedded PostgreSQL ...")
            postgres = EmbeddedPostgres(self.state_dir / "postgres", free_port(), durable=self.durable_postgres)
            self._postgres = postgres
            postgres.start()
            self.database_url = postgres.url
        external_broker = self._source_env.get("SOUS_KAFKA_BOOTSTRAP", "")
        if external_broker:
            self.kafka_bootstrap = external_broker
            self._say("broker: using SOUS_KAFKA_BOOTSTRAP")
            return
        broker: Any
        if self.broker == "kafka":
            from sous_local.kafka_lane import ApacheKafka

            self._say("starting Apache Kafka (the first start fetches the broker jars) ...")
            broker = ApacheKafka(self.state_dir / "kafka")
        else:
            from sous_local.broker import EmbeddedBroker

            self._say("starting the embedded broker ...")
            broker = EmbeddedBroker(self.state_dir / "broker")
        self._broker = broker
        broker.start()
        self.kafka_bootstrap = broker.bootstrap

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
        self._wait_http(MODEL_SERVER, f"http://127.0.0.1:{self.model_port}/healthz")

    def _prepare_environment(self) -> None:
        found = load_or_create_secrets(self.state_dir, self._source_env)
        self.internal_secret = found["SOUS_INTERNAL_SECRET"]
        self.jwt_secret = found["SOUS_JWT_SECRET"]
        env = dict(self._source_env)
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
        run_async(_create_databases(self.database_url, self._database_names().values()))
        run_async(_ensure_topics(self.kafka_bootstrap))

    def _run_command(self, spec: ServiceSpec, command: str, timeout_s: float) -> str:
        """`python -m <pkg> <command>`, output appended to the service's log; returns the output."""
        log = self.log_path(spec.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        try:
            result = subprocess.run(
                [sys.executable, "-m", spec.package, command],
                env=self._service_env(spec),
                capture_output=True,
                timeout=timeout_s,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"`python -m {spec.package} {command}` did not finish within {timeout_s:.0f}s") from exc
        output = (result.stdout or b"").decode(errors="replace") + (result.stderr or b"").decode(errors="replace")
        with log.open("a") as handle:
            handle.write(f"\n--- python -m {spec.package} {command} (exit {result.returncode})\n{output}")
        if result.returncode != 0:
            last = "\n".join(output.splitlines()[-25:])
            raise StackError(
                f"{spec.name}: `python -m {spec.package} {command}` failed (exit {result.returncode}):\n{last}"
            )
        return output

    def _migrate(self) -> None:
        self._say("running migrations ...")
        # Alembic start-up is mostly import time; two at a time keeps a small machine responsive.
        errors: list[BaseException] = []
        lock = threading.Lock()

        def migrate(spec: ServiceSpec) -> None:
            try:
                self._run_command(spec, "migrate", 300)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

        pending = list(SERVICES)
        while pending:
            batch, pending = pending[:2], pending[2:]
            threads = [threading.Thread(target=migrate, args=(spec,), daemon=True) for spec in batch]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]

    def _replay_if_broker_empty(self) -> None:
        databases = {spec.name: self._database_names()[spec.name] for spec in SERVICES if spec.replays}
        sizes = run_async(_event_store_sizes(self.database_url, databases))
        if not any(sizes.values()):
            return
        if run_async(_broker_messages(self.kafka_bootstrap)) > 0:
            return
        self._say("the broker is empty but the event stores are not: re-publishing them ...")
        self.replayed_events = self.replay([name for name, size in sizes.items() if size > 0])
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
        port = self.ports[spec.name]
        managed = self.processes.get(spec.name) or ManagedProcess(
            spec.name,
            [sys.executable, "-m", spec.package, "serve"],
            self.log_path(spec.name),
            port,
        )
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
        managed = self.processes[name]
        deadline = time.monotonic() + self.ready_timeout_s
        last = "no answer"
        with httpx.Client(timeout=3.0) as client:
            while time.monotonic() < deadline:
                if not managed.alive():
                    code = managed.process.returncode if managed.process is not None else None
                    raise StackError(
                        f"{name} exited (code {code}) before it was ready; last lines of {managed.log_path}:\n"
                        f"{tail(managed.log_path)}"
                    )
                try:
                    response = client.get(url)
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:300]}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}"
                time.sleep(0.25)
        raise StackError(
            f"{name} was not ready after {self.ready_timeout_s:.0f}s ({url}: {last}); last lines of "
            f"{managed.log_path}:\n{tail(managed.log_path)}"
        )

    # -- the stack file ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        pids = self.pids()
        return {
            "supervisor": _pid_record(os.getpid()),
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
            "processes": {name: _pid_record(pid) for name, pid in pids.items()},
            "order": [name for name in ("postgres", "broker") if name in pids]
            + [name for name in self.processes if name in pids],
        }

    def _write_stack_file(self) -> None:
        path = self.stack_file
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.describe(), indent=2))
        temporary.chmod(0o600)
        temporary.replace(path)

    def _remove_stack_file(self) -> None:
        path = self.stack_file
        with contextlib.suppress(OSError, ValueError):
            recorded = json.loads(path.read_text())
            supervisor = recorded.get("supervisor") or {}
            if supervisor.get("pid") not in (None, os.getpid()):
                return  # another stack's file
        path.unlink(missing_ok=True)


_REPLAYED = re.compile(r"re-published (\d+) events")


def parse_replayed(output: str) -> int:
    return sum(int(match) for match in _REPLAYED.findall(output))


# -- a stack described by its stack.json, seen from another process ---------------------------------------


def read_stack_file(state_dir: Path) -> dict[str, Any] | None:
    path = Path(state_dir) / STACK_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recorded_process(record: object) -> psutil.Process | None:
    """The live process a {pid, create_time} record names, or None (gone, or the pid was reused)."""
    if not isinstance(record, dict) or "pid" not in record:
        return None
    try:
        process = psutil.Process(int(record["pid"]))
        if abs(process.create_time() - float(record.get("create_time", 0))) > 1.0:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (psutil.Error, ValueError, TypeError):
        return None


def supervisor_alive(description: Mapping[str, Any]) -> bool:
    return recorded_process(description.get("supervisor")) is not None


def refuse_if_running(state_dir: Path) -> None:
    """A live stack on this state folder is an error; the remains of a crashed one are cleaned up."""
    description = read_stack_file(state_dir)
    if description is None:
        return
    if supervisor_alive(description):
        pid = description["supervisor"]["pid"]
        raise StackError(f"a stack is already running from {state_dir} (pid {pid}); stop it with `sous down` first")
    stop_recorded_processes(description)
    (Path(state_dir) / STACK_FILE).unlink(missing_ok=True)


def stop_recorded_processes(description: Mapping[str, Any], grace_s: float = 10.0) -> list[str]:
    """Stops the processes a stack.json lists, in reverse start order; returns the names that were alive."""
    records: Mapping[str, Any] = description.get("processes") or {}
    order = list(description.get("order") or records)
    stopped: list[str] = []
    for name in reversed(order):
        process = recorded_process(records.get(name))
        if process is None:
            continue
        stopped.append(name)
        # PostgreSQL's fast shutdown is SIGINT; everything else stops on SIGTERM.
        first = signal.SIGINT if name == "postgres" else signal.SIGTERM
        _signal_group(process.pid, first)
        try:
            process.wait(grace_s)
        except psutil.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                process.wait(10)
        except psutil.Error:
            pass
        if name != "postgres":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # leftovers in the group
    return stopped


def stop_running_stack(state_dir: Path, timeout_s: float = 60.0) -> bool:
    """`sous down`: asks the supervising `sous up` to stop, or stops the recorded processes itself.

    Returns False when no stack was recorded under state_dir.
    """
    description = read_stack_file(state_dir)
    if description is None:
        return False
    supervisor = recorded_process(description.get("supervisor"))
    if supervisor is not None and supervisor.pid != os.getpid():
        with contextlib.suppress(psutil.Error):
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait(timeout_s)
    # Whatever the supervisor left behind (or everything, when it was SIGKILLed).
    stop_recorded_processes(description)
    (Path(state_dir) / STACK_FILE).unlink(missing_ok=True)
    return True

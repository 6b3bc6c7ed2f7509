"""The system under the soak: PostgreSQL, a broker, a fault proxy in front of PostgreSQL, and the stack.

The soak owns PostgreSQL and the broker (so it can crash and restart them) and hands the stack their
addresses; every service reaches PostgreSQL through the fault proxy, so their connections can be cut
while the soak itself (its checks) talks to PostgreSQL directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import make_url

from sous_local.faultproxy import ThreadedFaultProxy
from sous_local.postgres import EmbeddedPostgres
from sous_local.stack import SERVICES, Stack

BrokerKind = Literal["kafka", "embedded"]

# Generous limits: the soak measures robustness, not the rate limiter; the short lease makes a killed
# executor's executions move to another runner quickly.
SOAK_ENV = {
    "SOUS_ENV": "development",
    "SOUS_LEASE_TTL_S": "6",
    "SOUS_HEARTBEAT_INTERVAL_S": "1.5",  # well inside the lease, or a loaded runner loses leases it holds
    "SOUS_RATE_LIMIT_PER_MINUTE": "1000000",
    "SOUS_RATE_LIMIT_BURST": "100000",
    "SOUS_WORKSPACE_RATE_LIMIT_PER_MINUTE": "1000000",
    "SOUS_WORKSPACE_RATE_LIMIT_BURST": "100000",
    "SOUS_AUTH_FAILURE_LIMIT_PER_MINUTE": "1000000",
    "SOUS_AUTH_FAILURE_BURST": "100000",
    "SOUS_MAX_CONCURRENT_EXECUTIONS_PER_WORKSPACE": "100000",
    "SOUS_DEFAULT_RUNS_PER_DAY": "1000000",
    "SOUS_DEFAULT_MAX_TOKENS": "0",
    "SOUS_DEFAULT_MAX_COST_USD": "0",
}

SERVICE_NAMES = tuple(spec.name for spec in SERVICES)


def _clean_environment() -> None:
    # Like the tests: an exported `make up` configuration must not steer the soak's services.
    for name in [n for n in os.environ if n.startswith("SOUS_") and n != "SOUS_KAFKA_CACHE"]:
        del os.environ[name]


class ChaosSystem:
    def __init__(self, root: Path, broker: BrokerKind, log: Any = print) -> None:
        self.root = root
        self.broker_kind = broker
        self.log = log
        # Durable: with synchronous_commit off, a PostgreSQL crash forgets commits it already acknowledged,
        # which the soak would then report as executions lost.
        self.postgres = EmbeddedPostgres(root / "postgres", durable=True)
        self.broker: Any = None
        self.proxy: ThreadedFaultProxy | None = None
        self.stack: Stack | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        _clean_environment()
        self.log("starting PostgreSQL ...")
        self.postgres.start()
        self.log(f"starting the broker ({self.broker_kind}) ...")
        if self.broker_kind == "kafka":
            from sous_local.kafka_lane import ApacheKafka

            self.broker = ApacheKafka(self.root / "kafka")
        else:
            from sous_local.broker import EmbeddedBroker

            self.broker = EmbeddedBroker(self.root / "broker")
        self.broker.start()
        self.proxy = ThreadedFaultProxy("127.0.0.1", self.postgres.port).start()
        proxied = make_url(self.postgres.url).set(port=self.proxy.port).render_as_string(hide_password=False)
        env = {**SOAK_ENV, "SOUS_DATABASE_URL": proxied, "SOUS_KAFKA_BOOTSTRAP": self.broker.bootstrap}
        self.log("starting the services ...")
        self.stack = Stack(self.root / "stack", broker=self.broker_kind, env=env, ports="auto", quiet=True)
        self.stack.start()

    def stop(self) -> None:
        if self.stack is not None:
            with contextlib.suppress(Exception):
                self.stack.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self.broker is not None:
            with contextlib.suppress(Exception):
                self.broker.stop()
        with contextlib.suppress(Exception):
            self.postgres.stop()

    def remove_files(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- what the checks read ------------------------------------------------------------------------------

    @property
    def running(self) -> Stack:
        assert self.stack is not None, "the system is not started"
        return self.stack

    def database_dsn(self, database: str) -> str:
        """A direct (not proxied) asyncpg DSN: the soak's own reads are not subject to the faults."""
        url = make_url(self.postgres.url).set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)

    @property
    def bootstrap(self) -> str:
        return str(self.broker.bootstrap)

    # -- faults ----------------------------------------------------------------------------------------

    def kill_and_restart(self, service: str, down_s: float) -> None:
        """SIGKILL a service, keep it down a moment, start it again and wait until it is ready."""
        self.running.kill(service)
        time.sleep(down_s)
        self.running.start_service(service)

    def crash_postgres(self, down_s: float) -> None:
        """SIGKILL every PostgreSQL process (a crash, recovered from the WAL on start), then start it."""
        process = self.postgres.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        time.sleep(down_s)
        self.postgres.start()

    def restart_broker(self, down_s: float) -> None:
        self.broker.stop()
        time.sleep(down_s)
        self.broker.start()
        if self.broker_kind == "embedded":
            # The embedded broker keeps nothing: re-publish the event stores, as `sous replay` does.
            self.running.replay()

    def cut_database(self, seconds: float) -> None:
        assert self.proxy is not None
        self.proxy.cut()
        try:
            time.sleep(seconds)
        finally:
            self.proxy.restore()

"""The Apache Kafka lane: one real KRaft node (broker + controller) on the JDK, for durable-broker tests.

The broker jars come from Maven Central through a throwaway pom (`deploy/local/kafka/pom.xml`) and are
cached per version, so only the first run needs the network. Unlike the embedded broker, this node keeps
its log on disk: `restart()` brings back every record, and production producer settings (idempotence,
acks=all) work against it.

    python -m sous_local.kafka_lane fetch
    python -m sous_local.kafka_lane run --data-dir D [--port P]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from sous_local.ports import free_port, wait_for_port

KAFKA_VERSION = "4.1.1"  # keep in step with <kafka.version> in deploy/local/kafka/pom.xml
HEAP = "-Xmx512m"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"
BROKER_CLASS = "kafka.Kafka"

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # deploy/local
POM_PATH = _PACKAGE_ROOT / "kafka" / "pom.xml"
_REPO_ROOT = _PACKAGE_ROOT.parents[1]


class KafkaLaneError(RuntimeError):
    """The node could not be fetched, formatted or started; the message points at its log."""


def default_cache_dir() -> Path:
    override = os.environ.get("SOUS_KAFKA_CACHE")
    if override:
        return Path(override)
    return _REPO_ROOT / ".sous" / "cache" / f"kafka-{KAFKA_VERSION}"


def fetch_jars(cache_dir: Path | None = None) -> Path:
    """Returns the folder holding the broker's runtime classpath, downloading it only once."""
    cache = cache_dir or default_cache_dir()
    libs = cache / "libs"
    if _complete(libs):
        return libs
    cache.mkdir(parents=True, exist_ok=True)
    # Test sessions running side by side may all find the cache empty; one fetches, the others wait.
    with _exclusive_lock(cache / ".fetch.lock"):
        if _complete(libs):
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaLaneError("Maven (mvn) is required to fetch the Kafka broker jars")
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=cache))
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM_PATH),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
                f"-Dkafka.version={KAFKA_VERSION}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise KafkaLaneError(f"fetching Kafka {KAFKA_VERSION} failed:\n{result.stdout}{result.stderr}")
        (staging / ".complete").write_text(KAFKA_VERSION)
        shutil.rmtree(libs, ignore_errors=True)
        # A rename is atomic, so a reader never sees a half-copied classpath.
        staging.rename(libs)
    return libs


def _complete(libs: Path) -> bool:
    return (libs / ".complete").is_file()


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaLaneError("a JDK (java 17+) is required for the Apache Kafka lane")
    return found


def random_cluster_id() -> str:
    # Kafka's own ids are URL-safe base64 of 16 random bytes; it rerolls ids starting with "-"
    # because the CLI would read them as an option.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "log"),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        # Fewer internal partitions make the first consumer group and transaction start fast on 2 cores.
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = stdout
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = stdout
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


class ApacheKafka:
    """A single-node Apache Kafka (KRaft, combined broker and controller) whose data lives in `data_dir`.

    Synchronous on purpose: the pytest infrastructure plugin drives it from plain fixtures, and fault
    tests restart it from inside async tests (a nested event loop would not be allowed there).
    """

    def __init__(self, data_dir: Path, port: int | None = None, cache_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.controller_port = free_port()
        self.cache_dir = cache_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    def start(self, timeout_s: float = 90.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        libs = fetch_jars(self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.data_dir / "log" / "meta.properties").is_file():
            self._format(libs)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self._java(libs), BROKER_CLASS, str(self.properties_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.data_dir,
            )
        try:
            self._wait_until_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> ApacheKafka:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _write_config(self) -> None:
        # The controller's address is recorded in the formatted quorum, so a restarted node must keep it.
        saved_controller_port = self.data_dir / "controller.port"
        if saved_controller_port.is_file():
            self.controller_port = int(saved_controller_port.read_text())
        else:
            saved_controller_port.write_text(str(self.controller_port))
        self.properties_path.write_text(server_properties(self.data_dir, self.port, self.controller_port))
        (self.data_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)

    def _java(self, libs: Path) -> list[str]:
        return [
            java_executable(),
            HEAP,
            "-Xms128m",
            # The client-grade JIT only: with the optimizing tier the node's compiler threads were still
            # spending 0.9 ms of CPU per step after 900 runs (44 % of the broker's CPU at one run in flight),
            # and a single-node broker's request handling measured the same on either tier.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
        ]

    def _format(self, libs: Path) -> None:
        result = subprocess.run(
            [
                *self._java(libs),
                STORAGE_TOOL_CLASS,
                "format",
                "--standalone",
                "--ignore-formatted",
                "-t",
                random_cluster_id(),
                "-c",
                str(self.properties_path),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.data_dir,
        )
        if result.returncode != 0:
            raise KafkaLaneError(f"formatting the KRaft storage failed:\n{result.stdout}{result.stderr}")

    def _wait_until_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._raise_if_exited()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaLaneError(f"Kafka did not become ready in {timeout_s}s; see {self.log_path}")
            try:
                # Probing the port first keeps the Kafka client from logging a connection error per attempt.
                wait_for_port(self.port, timeout_s=min(1.0, remaining))
                if _answers_metadata(self.bootstrap):
                    return
            except TimeoutError:
                pass
            time.sleep(0.2)

    def _raise_if_exited(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            self.process = None
            raise KafkaLaneError(f"Kafka exited with code {code} while starting:\n{_tail(self.log_path)}")


def _answers_metadata(bootstrap: str) -> bool:
    """True once the node answers a metadata request listing itself (registered and unfenced).

    Runs the async client in its own thread and loop, so callers may already be inside an event loop.
    """
    outcome: list[bool] = []
    probe = threading.Thread(target=lambda: outcome.append(asyncio.run(_probe_metadata(bootstrap))))
    probe.start()
    probe.join()
    return bool(outcome and outcome[0])


async def _probe_metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        await admin.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run_foreground(data_dir: Path, port: int | None) -> int:
    kafka = ApacheKafka(data_dir, port)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    kafka.start()
    print(f"Apache Kafka {KAFKA_VERSION} ready on {kafka.bootstrap} (log: {kafka.log_path})", flush=True)
    try:
        while not stop_requested.wait(0.5):
            if kafka.process is None or kafka.process.poll() is not None:
                print(f"Kafka exited unexpectedly:\n{_tail(kafka.log_path)}", file=sys.stderr)
                return 1
    finally:
        kafka.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sous_local.kafka_lane", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download the broker jars into the cache and exit")
    run = commands.add_parser("run", help="run one KRaft node in the foreground until SIGTERM/SIGINT")
    run.add_argument("--data-dir", type=Path, required=True)
    run.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch_jars())
            return 0
        return _run_foreground(args.data_dir, args.port)
    except KafkaLaneError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

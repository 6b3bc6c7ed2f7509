"""Child processes of the local stack: started in a session of their own, stopped with their whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sous_local.stack_spec import StackError


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
        signal_group(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL after the grace period; reaps the process."""
        if self.process is None:
            return
        if self.process.poll() is None:
            signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in the group (children of the service) goes too.
        signal_group(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def signal_group(pid: int, sig: signal.Signals) -> None:
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


def wait_until_ready(managed: ManagedProcess, url: str, timeout_s: float) -> None:
    """Polls `url` until it answers 200; fails early, with the log's last lines, if the process exits."""
    name = managed.name
    deadline = time.monotonic() + timeout_s
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
        f"{name} was not ready after {timeout_s:.0f}s ({url}: {last}); last lines of "
        f"{managed.log_path}:\n{tail(managed.log_path)}"
    )

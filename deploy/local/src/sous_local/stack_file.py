"""`state_dir/stack.json`: how a running stack describes itself, so that another shell can find and stop it.

`sous down` and `sous status` read it; a stack that crashed leaves it behind, and the next start cleans up the
processes it names (a recorded pid counts only while its create time matches, so a reused pid is never hit).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from sous_local.processes import signal_group
from sous_local.stack_spec import StackError

STACK_FILE = "stack.json"


def pid_record(pid: int | None) -> dict[str, float | int] | None:
    if pid is None:
        return None
    try:
        return {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    except psutil.Error:
        return None


def write_stack_file(path: Path, description: Mapping[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(description, indent=2))
    temporary.chmod(0o600)
    temporary.replace(path)


def remove_stack_file(path: Path) -> None:
    """Removes the file unless another (live or crashed) stack's supervisor wrote it."""
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(path.read_text())
        supervisor = recorded.get("supervisor") or {}
        if supervisor.get("pid") not in (None, os.getpid()):
            return  # another stack's file
    path.unlink(missing_ok=True)


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
        signal_group(process.pid, first)
        try:
            process.wait(grace_s)
        except psutil.TimeoutExpired:
            signal_group(process.pid, signal.SIGKILL)
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

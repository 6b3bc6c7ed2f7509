"""Free loopback ports and waiting for a server to accept connections."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Ports handed out in this process and not yet given again: two servers started together never get the same one.
_handed_out: set[int] = set()


def listen_range() -> tuple[int, int]:
    """Ports below the kernel's ephemeral range (where outgoing connections take their local port).

    A port the kernel chooses (binding port 0) lies inside that range, so between being chosen and being bound
    by the server it is for, any outgoing connection could take it ("address already in use"). Below the range
    only another listener can.
    """
    try:
        start = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        start = 32768
    return max(1024, start - 12000), start - 1


def free_port() -> int:
    low, high = listen_range()
    for _ in range(500):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s")

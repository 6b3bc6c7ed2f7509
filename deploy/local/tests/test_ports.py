"""Unit tests: a free port is chosen below the kernel's ephemeral range, so no outgoing connection takes it
before its server binds it, and one process never hands the same port out twice."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sous_local import ports

pytestmark = pytest.mark.unit


def test_a_free_port_lies_below_the_ephemeral_range_and_can_be_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    range_file = tmp_path / "ip_local_port_range"
    range_file.write_text("40000\t60999\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", range_file)
    assert ports.listen_range() == (28000, 39999)

    chosen = [ports.free_port() for _ in range(20)]

    assert all(28000 <= port <= 39999 for port in chosen)
    assert len(set(chosen)) == len(chosen)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", chosen[0]))


def test_an_unreadable_range_falls_back_to_the_usual_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert ports.listen_range() == (20768, 32767)

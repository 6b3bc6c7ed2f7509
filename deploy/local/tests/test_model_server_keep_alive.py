"""Unit test: the offline model server outlives its clients' idle connections."""

from __future__ import annotations

from typing import Any

import pytest

from sous_local.model_server import __main__ as entry

pytestmark = pytest.mark.unit

HTTPX_KEEPALIVE_EXPIRY_S = 5.0  # httpx's default: a client drops a connection idle this long


def test_idle_connections_stay_open_longer_than_a_client_keeps_them(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(entry.uvicorn, "run", lambda app, **options: seen.update(options))
    entry.main(["--port", "1"])
    assert seen["timeout_keep_alive"] > HTTPX_KEEPALIVE_EXPIRY_S * 2
    entry.main(["--port", "1", "--keep-alive-s", "7"])
    assert seen["timeout_keep_alive"] == 7

"""The fault proxy in front of the real embedded PostgreSQL: forwards, cuts, restores, delays."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from sous_local.faultproxy import FaultProxy, ThreadedFaultProxy
from sous_local.testing import Infrastructure

pytestmark = pytest.mark.integration


def _through(database_url: str, port: int) -> str:
    url = make_url(database_url).set(drivername="postgresql", host="127.0.0.1", port=port, database="postgres")
    return url.render_as_string(hide_password=False)


def _target(database_url: str) -> tuple[str, int]:
    url = make_url(database_url)
    return url.host or "127.0.0.1", int(url.port or 5432)


async def _select_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


async def test_a_connection_works_through_the_proxy_fails_when_cut_and_works_after_restore(
    infra: Infrastructure,
) -> None:
    proxy = await FaultProxy(*_target(infra.database_url)).start()
    try:
        dsn = _through(infra.database_url, proxy.port)
        live = await asyncpg.connect(dsn, timeout=10)
        assert await live.fetchval("SELECT 1") == 1

        proxy.cut()
        with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)):
            await asyncio.wait_for(live.fetchval("SELECT 1"), 10)
        with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)):
            await _select_one(dsn)
        assert proxy.refused >= 1

        proxy.restore()
        assert await _select_one(dsn) == 1
        live.terminate()
    finally:
        await proxy.stop()


async def test_the_port_survives_a_cut_so_clients_reconnect_to_the_same_address(infra: Infrastructure) -> None:
    proxy = await FaultProxy(*_target(infra.database_url)).start()
    try:
        port = proxy.port
        proxy.cut()
        proxy.restore()
        assert proxy.port == port
        assert await _select_one(_through(infra.database_url, port)) == 1
    finally:
        await proxy.stop()


async def test_latency_delays_but_still_delivers(infra: Infrastructure) -> None:
    proxy = await FaultProxy(*_target(infra.database_url)).start()
    try:
        proxy.latency(0.05)
        assert await _select_one(_through(infra.database_url, proxy.port)) == 1
        proxy.latency(0)
    finally:
        await proxy.stop()


async def test_an_unreachable_target_refuses_the_client(infra: Infrastructure) -> None:
    proxy = await FaultProxy("127.0.0.1", 1).start()
    try:
        with pytest.raises((OSError, asyncpg.InterfaceError, TimeoutError)):
            await _select_one(_through(infra.database_url, proxy.port))
    finally:
        await proxy.stop()


def test_the_threaded_proxy_is_driven_from_synchronous_code(infra: Infrastructure) -> None:
    proxy = ThreadedFaultProxy(*_target(infra.database_url)).start()
    try:
        dsn = _through(infra.database_url, proxy.port)
        assert asyncio.run(_select_one(dsn)) == 1
        proxy.cut()
        deadline = time.monotonic() + 30
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                asyncio.run(_select_one(dsn))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                refused = True
        assert refused
        proxy.restore()
        assert asyncio.run(_select_one(dsn)) == 1
    finally:
        proxy.stop()


def test_the_proxy_runs_as_a_process_cut_and_restored_by_signals(infra: Infrastructure) -> None:
    host, port = _target(infra.database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sous_local.faultproxy", host, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        proxy_port = int(process.stdout.readline())
        dsn = _through(infra.database_url, proxy_port)
        assert asyncio.run(_select_one(dsn)) == 1

        process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                asyncio.run(_select_one(dsn))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                refused = True
        assert refused

        process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert asyncio.run(_select_one(dsn)) == 1
                break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
    finally:
        process.terminate()
        process.wait(timeout=30)

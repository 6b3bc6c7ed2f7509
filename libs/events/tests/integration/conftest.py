from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sous_events.kafka import KafkaConfig, ensure_topics
from sous_local.pipeline import prepare


@pytest.fixture
async def engine(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(fresh_database, pool_size=10)
    await prepare(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
async def kafka(infra) -> KafkaConfig:  # type: ignore[no-untyped-def]
    config = KafkaConfig(bootstrap=infra.kafka_bootstrap)
    await ensure_topics(config)
    return config


@pytest.fixture
def workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"


class ConsumerProcess:
    """The pipeline consumer in its own OS process, so a test can SIGKILL it."""

    def __init__(self, database_url: str, bootstrap: str, consumer: str, workspace: str) -> None:
        self.args = [
            sys.executable,
            "-m",
            "sous_local.pipeline",
            "consume",
            "--database-url",
            database_url,
            "--bootstrap",
            bootstrap,
            "--consumer",
            consumer,
            "--workspace",
            workspace,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, env=os.environ.copy())

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def consumer_processes() -> AsyncIterator[Callable[..., ConsumerProcess]]:
    started: list[ConsumerProcess] = []

    def make(*args: str) -> ConsumerProcess:
        proc = ConsumerProcess(*args)
        started.append(proc)
        return proc

    yield make  # type: ignore[misc]
    for proc in started:
        proc.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")

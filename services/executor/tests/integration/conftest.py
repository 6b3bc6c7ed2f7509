from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sous_local.testing import Infrastructure

sys.path.insert(0, str(Path(__file__).parent))

from executor_harness import ModelServer, Running, executor_settings, running_executor


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def executor(infra: Infrastructure, fresh_database: str, model_server: ModelServer) -> AsyncIterator[Running]:
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server)
    async with running_executor(settings) as running:
        yield running

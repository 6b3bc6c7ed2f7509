from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sous_executor.bootstrap import MIGRATIONS_DIR
from sous_local.testing import Infrastructure
from sous_service.db import create_engine, create_session_factory
from sous_service.migrate import upgrade_async
from sous_service.statement_pool import StatementPool

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


@pytest.fixture
async def engine(infra: Infrastructure, fresh_database: str, model_server: ModelServer) -> AsyncIterator[AsyncEngine]:
    """The executor's database, migrated, with no executor running on it."""
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server)
    await upgrade_async(settings, MIGRATIONS_DIR)
    eng = create_engine(settings)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
async def statements(engine: AsyncEngine) -> AsyncIterator[StatementPool]:
    """The driver's pool of the executor's database, as a running executor holds it (runtime.statements)."""
    pool = StatementPool(engine, max_size=4)
    yield pool
    await pool.close()

"""The quality service's database, migrated, for integration tests that drive its handlers directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_quality.bootstrap import SERVICE
from sous_quality.config import QualitySettings
from sous_service.db import create_engine, create_session_factory


@pytest.fixture
async def quality(
    infra: Any, fresh_database: str
) -> AsyncIterator[tuple[QualitySettings, async_sessionmaker[AsyncSession]]]:
    """Settings for a fresh database, migrated, and sessions on it."""
    settings = QualitySettings(
        env="test",
        database_url=fresh_database,
        database_name="",
        kafka_bootstrap=infra.kafka_bootstrap,
        internal_secret="quality-integration-test-secret",
        database_pool_size=2,
    )
    await SERVICE.migrate_async(settings)
    engine = create_engine(settings)
    try:
        yield settings, create_session_factory(engine)
    finally:
        await engine.dispose()

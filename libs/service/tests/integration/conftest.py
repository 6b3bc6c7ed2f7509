from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_service.config import ServiceSettings
from sous_service.db import create_engine


@pytest.fixture
async def engine(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    """The service's engine on a fresh database, its pool one connection (so a test knows which one it gets)."""
    eng = create_engine(ServiceSettings(database_url=fresh_database, database_pool_size=1))
    yield eng
    await eng.dispose()

"""A consumer runner reports having joined its group only once the group assigned it its partitions."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous_events import topics
from sous_events.consumer import ConsumerRunner

pytestmark = pytest.mark.integration


async def _nothing(*_: object) -> None:
    return None


async def test_joined_is_set_once_the_group_assigned_the_partitions(sessions, kafka):  # type: ignore[no-untyped-def]
    runner = ConsumerRunner(
        name=f"join-{uuid.uuid4().hex[:8]}",
        topics=[topics.CATALOG_RECIPES],
        handler=_nothing,
        sessions=sessions,
        kafka=kafka,
    )
    assert not runner.joined.is_set()
    runner.start()
    try:
        await asyncio.wait_for(runner.joined.wait(), timeout=60)
        await asyncio.wait_for(runner.ready.wait(), timeout=60)
        assert runner._consumer is not None and runner._consumer.assignment()
    finally:
        await runner.stop()

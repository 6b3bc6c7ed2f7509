"""A service is ready only once every consumer of it has joined its group."""

from __future__ import annotations

import pytest

from sous_events.events import AgentMetricsUpdated
from sous_service.config import ServiceSettings
from sous_service.runtime import ConsumerSpec, ServiceRuntime

pytestmark = pytest.mark.unit


async def _nothing(*_: object) -> None:
    return None


async def test_the_consumers_check_waits_for_every_consumer_to_join() -> None:
    runtime = ServiceRuntime.create(ServiceSettings(service_name="things"))
    first = runtime.add_consumer(ConsumerSpec(name="things-a", handlers={AgentMetricsUpdated: _nothing}))
    second = runtime.add_consumer(ConsumerSpec(name="things-b", handlers={AgentMetricsUpdated: _nothing}))
    consumers_joined = runtime.readiness()["consumers"]
    try:
        assert await consumers_joined() is False
        first.joined.set()
        assert await consumers_joined() is False
        second.joined.set()
        assert await consumers_joined() is True
    finally:
        await runtime.engine.dispose()

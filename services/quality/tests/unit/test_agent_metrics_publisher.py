"""The agents' metrics publisher: one agent that cannot be published does not hold the others back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sous_quality.adapters import repository
from sous_quality.commands import PublishAgentMetrics
from sous_quality.entrypoints.agent_metrics import AgentMetricsPublisher

pytestmark = pytest.mark.unit


class Units:
    """Stands in for UnitOfWorks: runs each command as told, refusing the agents named `broken`."""

    def __init__(self, broken: set[str]) -> None:
        self.broken = broken
        self.ran: list[tuple[str, str]] = []

    @contextlib.asynccontextmanager
    async def sessions(self) -> AsyncIterator[object]:
        yield object()

    async def run(self, handler: Any, command: PublishAgentMetrics, caller: Any) -> bool:
        self.ran.append((command.agent_id, caller.workspace_id))
        if command.agent_id in self.broken:
            raise RuntimeError("the agent's row is locked by a stuck transaction")
        return True


async def test_a_failing_agent_is_skipped_and_the_rest_are_published(monkeypatch: pytest.MonkeyPatch) -> None:
    async def staged(session: object) -> list[tuple[str, str]]:
        return [("a1", "ws1"), ("a2", "ws1"), ("a3", "ws2")]

    monkeypatch.setattr(repository, "agents_with_staged_attempts", staged)
    units = Units(broken={"a1"})
    published = await AgentMetricsPublisher(units, window_s=1.0).tick()  # type: ignore[arg-type]
    assert published == 2
    assert units.ran == [("a1", "ws1"), ("a2", "ws1"), ("a3", "ws2")]

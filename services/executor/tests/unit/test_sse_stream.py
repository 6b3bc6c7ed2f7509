"""Unit test: a live event stream ends with the execution's last events even when the finish commits mid-pass."""

from __future__ import annotations

from typing import Any

import pytest

from sous_executor.adapters.event_notifications import EventNotifications
from sous_executor.entrypoints import sse

pytestmark = pytest.mark.unit


async def test_a_finish_committed_between_the_read_and_the_status_look_is_still_streamed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = [(1, "ExecutionRequested", '{"n": 1}')]

    async def events_after(_reads: Any, _execution_id: str, after: int) -> list[tuple[int, str, str]]:
        return [row for row in stored if row[0] > after]

    async def finished(_reads: Any, _execution_id: str) -> bool:
        # The run finishes right after the pass read the store: its status is terminal before the next read.
        stored.append((2, "ExecutionFinished", '{"n": 2}'))
        return True

    monkeypatch.setattr(sse, "_events_after", events_after)
    monkeypatch.setattr(sse, "_finished", finished)
    notifications = EventNotifications("postgresql://unused/db")
    notifications.listening = True

    frames = [
        frame
        async for frame in sse.stream_execution(None, notifications, "e1", 1, keepalive_s=0)  # type: ignore[arg-type]
    ]

    assert frames[-1] == sse.format_event(2, "ExecutionFinished", '{"n": 2}')

"""Unit tests: a live event stream reads once per wake-up and ends with the execution's last events."""

from __future__ import annotations

from typing import Any

import pytest

from sous_executor.adapters.event_notifications import EventNotifications
from sous_executor.entrypoints import sse

pytestmark = pytest.mark.unit


def listening() -> EventNotifications:
    notifications = EventNotifications("postgresql://unused/db")
    notifications.listening = True
    return notifications


async def test_a_pass_that_reads_a_terminal_status_sends_its_events_and_ends_without_another_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A run cancelled before it started: its stream has no ExecutionFinished, only a terminal status.
    stored = [(1, "ExecutionRequested", '{"n": 1}'), (2, "ExecutionCancelRequested", '{"n": 2}')]
    passes: list[int] = []

    async def read_pass(_reads: Any, _execution_id: str, after: int) -> tuple[list[Any], bool]:
        passes.append(after)
        return [row for row in stored if row[0] > after], True

    monkeypatch.setattr(sse, "read_pass", read_pass)
    frames = [frame async for frame in sse.stream_execution(None, listening(), "e1", 0, keepalive_s=0)]  # type: ignore[arg-type]

    assert passes == [0]
    assert frames[1:] == ["".join(sse.format_event(*row) for row in stored)]


async def test_the_stream_ends_at_execution_finished_even_before_the_status_is_read_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = [(1, "ExecutionRequested", '{"n": 1}'), (2, "ExecutionFinished", '{"n": 2}')]

    async def read_pass(_reads: Any, _execution_id: str, after: int) -> tuple[list[Any], bool]:
        return [row for row in stored if row[0] > after], False

    monkeypatch.setattr(sse, "read_pass", read_pass)
    frames = [frame async for frame in sse.stream_execution(None, listening(), "e1", 1, keepalive_s=0)]  # type: ignore[arg-type]

    assert frames[-1] == sse.format_event(2, "ExecutionFinished", '{"n": 2}')


async def test_a_pass_with_nothing_new_keeps_the_stream_open_until_a_later_pass_finds_the_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = [(1, "ExecutionRequested", '{"n": 1}')]
    passes: list[int] = []

    async def read_pass(_reads: Any, _execution_id: str, after: int) -> tuple[list[Any], bool]:
        passes.append(after)
        if len(passes) == 2:
            stored.append((2, "ExecutionFinished", '{"n": 2}'))
            return [], False  # woken by a notification whose append the first pass already read
        return [row for row in stored if row[0] > after], False

    monkeypatch.setattr(sse, "read_pass", read_pass)
    frames = [frame async for frame in sse.stream_execution(None, listening(), "e1", 0, keepalive_s=0)]  # type: ignore[arg-type]

    assert passes == [0, 1, 1]
    assert frames[-1] == sse.format_event(2, "ExecutionFinished", '{"n": 2}')

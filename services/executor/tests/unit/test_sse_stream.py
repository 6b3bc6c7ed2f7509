"""Unit tests: a live event stream reads once per wake-up, sends what it is handed without reading it back,
and ends with the execution's last events."""

from __future__ import annotations

from typing import Any

import pytest

from sous_executor.adapters.event_notifications import EventNotifications, Subscription, parse_payload
from sous_executor.entrypoints import sse

pytestmark = pytest.mark.unit


def reads_of(monkeypatch: pytest.MonkeyPatch, stored: list[tuple[int, str, str]]) -> list[int]:
    """The stream reads `stored` (never a terminal status); the list of each read's `after`, as it grows."""
    passes: list[int] = []

    async def read_pass(_reads: Any, _execution_id: str, after: int) -> tuple[list[Any], bool]:
        passes.append(after)
        return [row for row in stored if row[0] > after], False

    monkeypatch.setattr(sse, "read_pass", read_pass)
    return passes


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
    # The retry hint and the stored events: one chunk, one socket write.
    assert frames == ["retry: 1000\n\n" + "".join(sse.format_event(*row) for row in stored)]


async def test_the_stream_ends_at_execution_finished_even_before_the_status_is_read_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = [(1, "ExecutionRequested", '{"n": 1}'), (2, "ExecutionFinished", '{"n": 2}')]

    async def read_pass(_reads: Any, _execution_id: str, after: int) -> tuple[list[Any], bool]:
        return [row for row in stored if row[0] > after], False

    monkeypatch.setattr(sse, "read_pass", read_pass)
    frames = [frame async for frame in sse.stream_execution(None, listening(), "e1", 1, keepalive_s=0)]  # type: ignore[arg-type]

    assert frames == ["retry: 1000\n\n" + sse.format_event(2, "ExecutionFinished", '{"n": 2}')]


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


async def test_events_handed_over_are_sent_without_a_read_and_their_notification_costs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = reads_of(monkeypatch, [(1, "ExecutionRequested", '{"n": 1}')])
    hub = listening()
    stream = sse.stream_execution(None, hub, "e1", 0, keepalive_s=3600)  # type: ignore[arg-type]
    frames = [await anext(stream)]  # the retry hint with what is stored
    assert frames[0] == "retry: 1000\n\n" + sse.format_event(1, "ExecutionRequested", '{"n": 1}')
    assert passes == [0]

    hub.appending("Execution", "e1")
    hub._on_notify(None, 0, "", "Execution:e1:3")  # the append's NOTIFY, before the append is handed over
    assert passes == [0]
    hub.appended("Execution", "e1", [(2, "StepStarted", '{"n": 2}'), (3, "StepCompleted", '{"n": 3}')])
    frames.append(await anext(stream))
    hub.appending("Execution", "e1")
    hub.appended("Execution", "e1", [(4, "ExecutionFinished", '{"n": 4}')])
    hub._on_notify(None, 0, "", "Execution:e1:4")  # after it: already sent
    frames.append(await anext(stream))

    assert passes == [0]  # one read: the stored events; the rest were handed over
    assert frames[1] == sse.format_event(2, "StepStarted", '{"n": 2}') + sse.format_event(
        3, "StepCompleted", '{"n": 3}'
    )
    assert frames[2] == sse.format_event(4, "ExecutionFinished", '{"n": 4}')
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_a_stream_with_nothing_to_send_yet_sends_its_retry_hint_before_it_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = reads_of(monkeypatch, [(1, "ExecutionRequested", '{"n": 1}')])
    stream = sse.stream_execution(None, listening(), "e1", 1, keepalive_s=3600)  # type: ignore[arg-type]
    assert await anext(stream) == "retry: 1000\n\n"  # resumed after the last event: nothing new yet
    assert passes == [1]
    await stream.aclose()


def test_a_gap_or_a_later_announcement_sends_the_stream_to_the_store() -> None:
    subscription = Subscription()
    assert subscription.take(0) == ([], True)  # nothing known yet
    subscription.push([(3, "StepStarted", "{}")])
    assert subscription.take(1) == ([], True)  # version 2 was never handed over
    subscription.push([(2, "StepStarted", "{}"), (3, "StepCompleted", "{}")])
    subscription.announce(4)  # appended elsewhere (a cancel request through another instance)
    assert subscription.take(1) == ([(2, "StepStarted", "{}"), (3, "StepCompleted", "{}")], True)
    subscription.announce(3)
    assert subscription.take(4) == ([], False)
    subscription.announce(None)  # a notification without a version (the listener reconnected)
    assert subscription.take(4) == ([], True)


def test_notification_payloads_with_and_without_a_version() -> None:
    assert parse_payload("Execution:ab12:7") == ("Execution:ab12", 7)
    assert parse_payload("Execution:ab12") == ("Execution:ab12", None)
    assert parse_payload("WorkflowRun:r1:x") == ("WorkflowRun:r1:x", None)


def test_a_notification_during_an_append_of_this_process_wakes_the_stream_when_the_append_ends() -> None:
    subscription = Subscription()
    subscription.take(0)
    subscription.hold()
    subscription.announce(3)
    assert not subscription.woken.is_set()  # it would read back what the append is about to hand over
    subscription.push([])  # the append did not commit: the announced version is read from the store
    assert subscription.woken.is_set()
    assert subscription.take(0) == ([], True)

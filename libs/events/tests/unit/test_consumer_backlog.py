"""Records fetched while their partition is being worked on queue behind it, without pausing the partition."""

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from sous_events.consumer import ConsumerRunner
from sous_events.kafka import KafkaConfig

pytestmark = pytest.mark.unit

TP = TopicPartition("t", 0)


class PauseLog:
    def __init__(self) -> None:
        self.paused: list[TopicPartition] = []

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.extend(tps)


def _runner(max_backlog: int = 5000) -> ConsumerRunner:
    return ConsumerRunner(
        name="backlog",
        topics=["t"],
        handler=None,
        sessions=None,  # type: ignore[arg-type]
        kafka=KafkaConfig("unused"),
        max_backlog=max_backlog,
    )


async def test_records_fetched_during_work_follow_in_order_and_the_partition_keeps_fetching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = _runner()
    applied: list[Any] = []
    release = asyncio.Event()

    async def process_partition(tp: TopicPartition, records: list[Any], producer: Any) -> None:
        await release.wait()
        applied.extend(records)

    monkeypatch.setattr(runner, "_process_partition", process_partition)
    consumer = PauseLog()
    runner._dispatch(consumer, TP, [1, 2], None)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    runner._dispatch(consumer, TP, [3], None)  # type: ignore[arg-type]
    runner._dispatch(consumer, TP, [4, 5], None)  # type: ignore[arg-type]
    release.set()
    await runner._workers[TP]
    assert applied == [1, 2, 3, 4, 5]
    assert consumer.paused == []  # a paused partition would wait for the fetch in flight once resumed


async def test_a_long_backlog_pauses_the_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner(max_backlog=3)
    release = asyncio.Event()

    async def process_partition(tp: TopicPartition, records: list[Any], producer: Any) -> None:
        await release.wait()

    monkeypatch.setattr(runner, "_process_partition", process_partition)
    consumer = PauseLog()
    runner._dispatch(consumer, TP, [1], None)  # type: ignore[arg-type]
    runner._dispatch(consumer, TP, [2, 3], None)  # type: ignore[arg-type]
    assert consumer.paused == []
    runner._dispatch(consumer, TP, [4], None)  # type: ignore[arg-type]
    assert consumer.paused == [TP]
    release.set()
    await runner._workers[TP]

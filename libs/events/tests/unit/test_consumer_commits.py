"""Offsets are committed at most once per interval while records keep coming, and in full when the consumer stops."""

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from sous_events import consumer as consumer_module
from sous_events.consumer import ConsumerRunner
from sous_events.kafka import KafkaConfig

pytestmark = pytest.mark.unit

TP = TopicPartition("t", 0)
BATCHES = 20


class FeedingConsumer:
    """Hands out one record per poll, `BATCHES` times, and records every commit."""

    def __init__(self) -> None:
        self.next_offset = 0
        self.commits: list[dict[TopicPartition, int]] = []

    def subscribe(self, topics: list[str], listener: Any) -> None:
        return None

    async def start(self) -> None:
        return None

    async def getmany(self, timeout_ms: int = 0, max_records: int = 0) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0)
        if self.next_offset >= BATCHES:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        self.next_offset += 1
        return {TP: [self.next_offset - 1]}

    def pause(self, *tps: TopicPartition) -> None:
        return None

    def resume(self, *tps: TopicPartition) -> None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    async def stop(self) -> None:
        return None


class NoProducer:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


async def test_commits_are_coalesced_and_the_last_offset_is_committed_on_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FeedingConsumer()
    monkeypatch.setattr(consumer_module, "make_consumer", lambda config, group: fake)
    monkeypatch.setattr(consumer_module, "make_producer", lambda config: NoProducer())
    runner = ConsumerRunner(
        name="commits",
        topics=["t"],
        handler=None,
        sessions=None,  # type: ignore[arg-type]
        kafka=KafkaConfig("unused"),
        commit_interval_s=3600.0,
    )
    applied: list[int] = []

    async def process_partition(tp: TopicPartition, records: list[Any], producer: Any) -> None:
        applied.extend(records)
        runner._pending[tp] = records[-1] + 1

    monkeypatch.setattr(runner, "_process_partition", process_partition)
    runner.start()
    try:
        async with asyncio.timeout(30):
            while len(applied) < BATCHES:
                await asyncio.sleep(0.001)
    finally:
        await runner.stop()
    # One commit when the first records were applied, none per later poll, and the rest when stopping.
    assert len(fake.commits) <= 2 < BATCHES
    assert fake.commits[-1] == {TP: BATCHES}

"""A consumer restart never leaves work of the old consumer running beside the new one."""

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from sous_events import consumer as consumer_module
from sous_events.consumer import ConsumerRunner
from sous_events.kafka import KafkaConfig

pytestmark = pytest.mark.unit

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


class FakeConsumer:
    def __init__(self, log: list[str], batches: dict[TopicPartition, list[Any]]) -> None:
        self.log = log
        self.batches = batches

    def subscribe(self, topics: list[str], listener: Any) -> None:
        return None

    async def start(self) -> None:
        self.log.append("consumer started")

    async def getmany(self, timeout_ms: int = 0, max_records: int = 0) -> dict[TopicPartition, list[Any]]:
        batches, self.batches = self.batches, {}
        if not batches:
            await asyncio.sleep(timeout_ms / 1000)
        return batches

    def pause(self, *tps: TopicPartition) -> None:
        return None

    def resume(self, *tps: TopicPartition) -> None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return {TP0, TP1}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        return None

    async def stop(self) -> None:
        self.log.append("consumer stopped")


class FakeProducer:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


async def test_a_restart_stops_the_other_partitions_work_first(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    consumers = [FakeConsumer(log, {TP0: ["r0"], TP1: ["r1"]}), FakeConsumer(log, {})]
    monkeypatch.setattr(consumer_module, "make_consumer", lambda config, group: consumers.pop(0))
    monkeypatch.setattr(consumer_module, "make_producer", lambda config: FakeProducer())
    runner = ConsumerRunner(
        name="restart",
        topics=["t"],
        handler=None,
        sessions=None,
        kafka=KafkaConfig("unused"),  # type: ignore[arg-type]
    )
    release = asyncio.Event()

    async def process_partition(tp: TopicPartition, records: list[Any], producer: Any) -> None:
        if tp == TP0:
            raise RuntimeError("the dead-letter topic refused the record")
        try:
            await release.wait()  # partition 1 is mid-way through its records when partition 0 fails
            log.append("partition 1 applied a record")
        except asyncio.CancelledError:
            log.append("partition 1 cancelled")
            raise

    monkeypatch.setattr(runner, "_process_partition", process_partition)
    runner.start()
    try:
        async with asyncio.timeout(30):
            while log.count("consumer started") < 2:
                await asyncio.sleep(0.01)
        release.set()
        await asyncio.sleep(0)
    finally:
        await runner.stop()
    restarted = [i for i, line in enumerate(log) if line == "consumer started"][1]
    # The old consumer's partition-1 work ended before the new consumer started, and never applied anything.
    assert "partition 1 cancelled" in log[:restarted]
    assert "partition 1 applied a record" not in log

"""A real single-node Apache Kafka: records survive a broker restart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sous_local.kafka_lane import ApacheKafka

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[ApacheKafka]:
    node = ApacheKafka(tmp_path / "kafka")
    node.start()
    try:
        yield node
    finally:
        node.stop()


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000, max_records=10)
        return [(record.key, record.value) for records in batches.values() for record in records]
    finally:
        await consumer.stop()


async def test_a_record_survives_a_restart(kafka: ApacheKafka) -> None:
    topic = f"lane-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka.bootstrap, topic)
    # The production settings the embedded broker cannot honour.
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"recipe-created", key=b"recipe-1")
    finally:
        await producer.stop()
    assert await read_all(kafka.bootstrap, topic) == [(b"recipe-1", b"recipe-created")]

    kafka.restart()

    assert kafka.bootstrap.endswith(f":{kafka.port}")
    assert await read_all(kafka.bootstrap, topic) == [(b"recipe-1", b"recipe-created")]

    java = kafka.process
    kafka.stop()
    assert java is not None and java.poll() is not None, "stop() must not leave the JVM running"

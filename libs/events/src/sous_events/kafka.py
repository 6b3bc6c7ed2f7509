"""Kafka clients from configuration, topic administration and broker health."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from sous_events.topics import all_topics_with_dlq

# Records one poll may return (over all partitions). A partition's records of a poll are applied in one
# transaction, so under a backlog a larger poll means fewer transactions, commits and statements per event.
MAX_POLL_RECORDS = 2000


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str
    # Apache Kafka: acks=all + idempotence. The embedded broker has no idempotent producer.
    acks: str = "all"
    idempotence: bool = False
    send_timeout_s: float = 10.0
    partitions: int = 6
    replication: int = 1
    client_id: str = "sous"
    # A consumer is out of its group when silent this long. The embedded broker also takes half of it to let a
    # new group's first member join, so a shorter session makes a single-machine stack ready sooner.
    session_timeout_ms: int = 10_000
    # A fetch is answered once this much is ready or after the wait. Apache Kafka answers a fetch at the first
    # record otherwise: with a record at a time, each consumer group took one fetch round trip per event
    # (most of the broker's CPU at one run in flight); 64 KiB or 100 ms batches them at a bounded delay.
    # The embedded broker batches on its own, and a stack on it keeps the long idle poll (1 byte, 500 ms).
    fetch_min_bytes: int = 64 * 1024
    fetch_max_wait_ms: int = 100
    # The largest record the producer sends; match the broker's message.max.bytes (1 MiB by default), so a
    # record the broker would refuse fails at once, row by row, rather than taking a produce batch with it.
    max_message_bytes: int = 1024 * 1024
    # TLS to the brokers with a client certificate (Kubernetes: Strimzi's TLS listener, one KafkaUser per
    # service; deploy/k8s/components/kafka-tls). "PLAINTEXT" or "SSL"; the files are PEM paths. Unless
    # given, read from SOUS_KAFKA_SECURITY_PROTOCOL and SOUS_KAFKA_SSL_CAFILE / _CERTFILE / _KEYFILE.
    security_protocol: str = field(default_factory=lambda: _env("SOUS_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT")
    ssl_cafile: str | None = field(default_factory=lambda: _env("SOUS_KAFKA_SSL_CAFILE"))
    ssl_certfile: str | None = field(default_factory=lambda: _env("SOUS_KAFKA_SSL_CERTFILE"))
    ssl_keyfile: str | None = field(default_factory=lambda: _env("SOUS_KAFKA_SSL_KEYFILE"))


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def security_options(config: KafkaConfig) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: none for PLAINTEXT; for SSL, a context built from the files
    when the client is made (so a process that never opens a Kafka client never reads them)."""
    protocol = config.security_protocol.upper()
    if protocol == "PLAINTEXT":
        return {}
    if protocol != "SSL":
        raise ValueError(f"unsupported Kafka security protocol {config.security_protocol!r} (PLAINTEXT or SSL)")
    context = create_ssl_context(cafile=config.ssl_cafile, certfile=config.ssl_certfile, keyfile=config.ssl_keyfile)
    return {"security_protocol": "SSL", "ssl_context": context}


def make_producer(config: KafkaConfig) -> AIOKafkaProducer:
    acks: int | str = "all" if config.acks == "all" else int(config.acks)
    return AIOKafkaProducer(
        bootstrap_servers=config.bootstrap,
        client_id=config.client_id,
        acks=acks,
        enable_idempotence=config.idempotence,
        linger_ms=2,
        request_timeout_ms=int(config.send_timeout_s * 1000),
        max_batch_size=256 * 1024,
        max_request_size=config.max_message_bytes,
        **security_options(config),
    )


def make_consumer(config: KafkaConfig, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap,
        client_id=f"{config.client_id}-{group_id}",
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,
        # Partitions are not paused while worked on (see sous_events.consumer), so a fetch can wait this long.
        fetch_min_bytes=config.fetch_min_bytes,
        fetch_max_wait_ms=config.fetch_max_wait_ms,
        session_timeout_ms=config.session_timeout_ms,
        heartbeat_interval_ms=min(1_000, config.session_timeout_ms // 3),
        # Topics are created before consumers start and a broker error forces a refresh at once, so the
        # periodic refresh is only a safety net (it was the largest idle request load on the embedded broker).
        metadata_max_age_ms=30_000,
        **security_options(config),
    )


async def ensure_topics(config: KafkaConfig, topics: Sequence[str] | None = None) -> None:
    """Create the topics (and their DLQs) that do not exist yet."""
    wanted = list(topics) if topics is not None else all_topics_with_dlq()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=config.bootstrap, request_timeout_ms=10_000, **security_options(config)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(t, config.partitions, config.replication) for t in missing])
    finally:
        await admin.close()


async def broker_is_ready(config: KafkaConfig, timeout_s: float = 3.0) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=config.bootstrap, request_timeout_ms=int(timeout_s * 1000), **security_options(config)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def total_messages(config: KafkaConfig, topics: Sequence[str]) -> int:
    """The number of records the broker holds on these topics (0 for a wiped broker)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap, enable_auto_commit=False, **security_options(config)
    )
    await consumer.start()
    try:
        await consumer.topics()  # fetches metadata for every topic
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in (consumer.partitions_for_topic(topic) or set())
        ]
        if not partitions:
            return 0
        ends = await consumer.end_offsets(partitions)
        begins = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - begins[tp] for tp in partitions)
    finally:
        await consumer.stop()

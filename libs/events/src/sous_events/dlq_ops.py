"""Operator actions on the dead-letter topics: list, show, re-drive.

A dead letter is named `<dlq topic>:<partition>:<offset>`. Re-driving sends the original record (value, key,
original headers, plus `dlq_redriven_from`) back to its original topic, in DLQ order, so a key's records
keep their order (a key always lands in the same DLQ partition). It is safe to repeat: consumers that
applied the event already skip it by its event id. Re-driving everything moves a cursor (the committed
offsets of the `sous-dlq-redrive` group) past what was sent, so the next "everything" is only what is new.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from sous_events.dlq import (
    H_ATTEMPTS,
    H_CONSUMER,
    H_ERROR,
    H_ERROR_TYPE,
    H_REASON,
    H_REDRIVEN,
    H_SOURCE,
    H_TRACEBACK,
    original_headers,
    source_topic,
)
from sous_events.kafka import KafkaConfig, make_producer, security_options
from sous_events.topics import ALL_TOPICS, dlq_topic

REDRIVE_GROUP = "sous-dlq-redrive"


class UnknownDeadLetter(LookupError):
    pass


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    redriven: bool

    @property
    def id(self) -> str:
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return ""

    def summary(self) -> dict[str, Any]:
        attempts = self.header(H_ATTEMPTS)
        return {
            "id": self.id,
            "topic": source_topic(self.dlq_topic, self.headers),
            "key": (self.key or b"").decode(errors="replace"),
            "event_id": self.header("event_id"),
            "event_type": self.header("event_type"),
            "consumer": self.header(H_CONSUMER),
            "reason": self.header(H_REASON) or "handler",
            "error_type": self.header(H_ERROR_TYPE),
            "error": self.header(H_ERROR),
            "attempts": int(attempts) if attempts.isdigit() else 0,
            "source": self.header(H_SOURCE),
            "timestamp_ms": self.timestamp_ms,
            "redriven": self.redriven,
        }

    def detail(self) -> dict[str, Any]:
        text = self.value.decode(errors="replace")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        headers = {k: v.decode(errors="replace") for k, v in original_headers(self.headers)}
        return {**self.summary(), "traceback": self.header(H_TRACEBACK), "headers": headers, "value": value}


def parse_id(dead_letter_id: str) -> tuple[str, int, int]:
    """`<dlq topic>:<partition>:<offset>`; ValueError when it is not one."""
    topic, sep, rest = dead_letter_id.partition(":")
    partition, sep2, offset = rest.partition(":")
    if not (sep and sep2 and topic in dlq_topics() and partition.isdigit() and offset.isdigit()):
        raise ValueError(f"not a dead-letter id: {dead_letter_id!r} (expected <topic>.dlq:<partition>:<offset>)")
    return topic, int(partition), int(offset)


def dlq_topics(topic: str | None = None) -> list[str]:
    """The DLQ topics to look at: all, or the one of `topic` (named with or without `.dlq`)."""
    if topic is None:
        return [dlq_topic(t) for t in ALL_TOPICS]
    name = topic if topic.endswith(".dlq") else dlq_topic(topic)
    if name.removesuffix(".dlq") not in ALL_TOPICS:
        raise ValueError(f"unknown topic {topic!r}")
    return [name]


class _Reader:
    """Reads DLQ partitions from their start to their current end, and the re-drive cursor."""

    def __init__(self, kafka: KafkaConfig, timeout_s: float) -> None:
        self.kafka = kafka
        self.timeout_s = timeout_s
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap,
            group_id=REDRIVE_GROUP,
            enable_auto_commit=False,
            request_timeout_ms=int(timeout_s * 1000),
            **security_options(kafka),
        )
        # A consumer's topics() does not load partitions it can answer for; a producer waits for them.
        self.metadata = make_producer(kafka)
        self.cursor: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> _Reader:
        await asyncio.wait_for(self.consumer.start(), self.timeout_s)
        try:
            await asyncio.wait_for(self.metadata.start(), self.timeout_s)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.consumer.stop(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.metadata.stop(), 10)

    async def read(self, topics: Iterable[str]) -> list[DeadLetter]:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(await self.metadata.partitions_for(t))]
        if not partitions:
            return []
        self.consumer.assign(partitions)
        for tp in partitions:
            self.cursor[tp] = (await self.consumer.committed(tp)) or 0
        begins = await self.consumer.beginning_offsets(partitions)
        ends = await self.consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > begins[tp]}
        for tp in remaining:
            self.consumer.seek(tp, begins[tp])
        found: list[DeadLetter] = []
        async with asyncio.timeout(self.timeout_s):
            while remaining:
                batches = await self.consumer.getmany(*remaining, timeout_ms=500)
                for tp, records in batches.items():
                    found.extend(self._letter(tp, r) for r in records if r.offset < ends[tp])
                for tp in list(remaining):
                    if await self.consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        return sorted(found, key=lambda d: (d.dlq_topic, d.partition, d.offset))

    def _letter(self, tp: TopicPartition, record: Any) -> DeadLetter:
        return DeadLetter(
            dlq_topic=tp.topic,
            partition=tp.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value or b"",
            headers=tuple(record.headers or ()),
            redriven=record.offset < self.cursor.get(tp, 0),
        )

    async def advance(self, letters: Sequence[DeadLetter]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for letter in letters:
            tp = TopicPartition(letter.dlq_topic, letter.partition)
            offsets[tp] = max(offsets.get(tp, 0), letter.offset + 1, self.cursor.get(tp, 0))
        if offsets:
            await self.consumer.commit(offsets)


async def list_dead_letters(
    kafka: KafkaConfig, *, topic: str | None = None, include_redriven: bool = True, timeout_s: float = 30.0
) -> list[DeadLetter]:
    async with _Reader(kafka, timeout_s) as reader:
        letters = await reader.read(dlq_topics(topic))
    return [d for d in letters if include_redriven or not d.redriven]


async def get_dead_letter(kafka: KafkaConfig, dead_letter_id: str, *, timeout_s: float = 30.0) -> DeadLetter:
    topic, partition, offset = parse_id(dead_letter_id)
    for letter in await list_dead_letters(kafka, topic=topic, timeout_s=timeout_s):
        if (letter.partition, letter.offset) == (partition, offset):
            return letter
    raise UnknownDeadLetter(dead_letter_id)


async def redrive(
    kafka: KafkaConfig,
    *,
    ids: Sequence[str] | None = None,
    topic: str | None = None,
    timeout_s: float = 30.0,
) -> list[DeadLetter]:
    """Re-drive the given dead letters, or (ids None) every one not re-driven yet; returns what was sent."""
    wanted = [parse_id(i) for i in ids] if ids is not None else None
    topics = sorted({t for t, _, _ in wanted}) if wanted is not None else dlq_topics(topic)
    async with _Reader(kafka, timeout_s) as reader:
        letters = await reader.read(topics)
        if wanted is not None:
            by_position = {(d.dlq_topic, d.partition, d.offset): d for d in letters}
            missing = [i for i, w in zip(ids or (), wanted, strict=True) if w not in by_position]
            if missing:
                raise UnknownDeadLetter(", ".join(missing))
            chosen = sorted({by_position[w] for w in wanted}, key=lambda d: (d.dlq_topic, d.partition, d.offset))
        else:
            chosen = [d for d in letters if not d.redriven]
        await _send(kafka, chosen, timeout_s)
        if wanted is None:
            await reader.advance(chosen)
    return chosen


async def _send(kafka: KafkaConfig, letters: Sequence[DeadLetter], timeout_s: float) -> None:
    if not letters:
        return
    producer = make_producer(kafka)
    await asyncio.wait_for(producer.start(), timeout_s)
    try:
        futures = []
        for letter in letters:  # in DLQ order: one producer keeps a partition's records in send order
            headers = [*original_headers(letter.headers), (H_REDRIVEN, letter.id.encode())]
            futures.append(
                await producer.send(
                    source_topic(letter.dlq_topic, letter.headers), value=letter.value, key=letter.key, headers=headers
                )
            )
        await asyncio.wait_for(asyncio.gather(*futures), timeout_s)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 10)

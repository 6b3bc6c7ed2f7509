"""A consumer passes over the records its owner knows it has nothing to do for: no decoding, no inbox row."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition

import sous_events.consumer as consumer_module
from sous_events.codec import encode, kafka_headers
from sous_events.consumer import ConsumerRunner
from sous_events.envelope import Envelope
from sous_events.kafka import KafkaConfig

pytestmark = pytest.mark.unit

TP = TopicPartition("t", 0)


@dataclass
class Record:
    key: bytes
    value: bytes
    headers: Sequence[tuple[str, bytes]]
    offset: int
    topic: str = "t"
    partition: int = 0


def _record(aggregate_id: str, offset: int) -> Record:
    envelope = Envelope(
        event_type="Wanted",
        producer="test",
        workspace_id="w",
        aggregate_type="A",
        aggregate_id=aggregate_id,
        aggregate_version=1,
    )
    return Record(aggregate_id.encode(), encode(envelope), kafka_headers(envelope), offset)


class Sessions:
    """Counts the transactions the consumer opens."""

    def __init__(self) -> None:
        self.transactions = 0

    def __call__(self) -> Sessions:
        return self

    async def __aenter__(self) -> Sessions:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def begin(self) -> contextlib.AbstractAsyncContextManager[None]:
        @contextlib.asynccontextmanager
        async def transaction() -> AsyncIterator[None]:
            self.transactions += 1
            yield

        return transaction()


@pytest.mark.parametrize("batch", [False, True])
async def test_records_passed_over_are_consumed_without_a_claim_or_a_handler(
    monkeypatch: pytest.MonkeyPatch, batch: bool
) -> None:
    claimed: list[str] = []
    handled: list[str] = []

    async def claim_all(session: Any, name: str, envelopes: Sequence[Envelope]) -> list[Envelope]:
        claimed.extend(e.aggregate_id for e in envelopes)
        return list(envelopes)

    async def handler(session: Any, envelope: Envelope) -> None:
        handled.append(envelope.aggregate_id)

    monkeypatch.setattr(consumer_module, "claim", claim_all)
    sessions = Sessions()
    runner = ConsumerRunner(
        name="passes",
        topics=["t"],
        handler=handler,
        sessions=sessions,  # type: ignore[arg-type]
        kafka=KafkaConfig("unused"),
        event_types={"Wanted"},
        passes_over=lambda key: key is not None and key.startswith(b"mine-"),
    )
    records = [_record("mine-1", 0), _record("theirs", 1)] if batch else [_record("mine-1", 0)]
    await runner._process_partition(TP, records, None)  # type: ignore[arg-type]
    expected = ["theirs"] if batch else []
    assert claimed == expected and handled == expected
    assert sessions.transactions == len(expected)
    assert runner._pending[TP] == len(records)  # consumed all the same
    assert runner.passed_over == 1

"""A consumer skips the records whose event_type header it does not handle without decoding their value."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition

import sous_events.codec as codec_module
import sous_events.consumer as consumer_module
from sous_events.codec import encode, kafka_headers
from sous_events.consumer import ConsumerRunner
from sous_events.envelope import Envelope
from sous_events.kafka import KafkaConfig

pytestmark = pytest.mark.unit

TP = TopicPartition("t", 0)


@dataclass
class Record:
    value: bytes
    headers: Sequence[tuple[str, bytes]]
    offset: int = 0
    topic: str = "t"
    partition: int = 0


def _record(event_type: str, *, offset: int = 0, with_headers: bool = True) -> Record:
    envelope = Envelope(
        event_type=event_type,
        producer="test",
        workspace_id="w",
        aggregate_type="A",
        aggregate_id=f"a{offset}",
        aggregate_version=1,
    )
    return Record(encode(envelope), kafka_headers(envelope) if with_headers else [], offset)


class Sessions:
    """Just enough of an async_sessionmaker for a transaction nobody looks into."""

    def __call__(self) -> Sessions:
        return self

    async def __aenter__(self) -> Sessions:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def begin(self) -> contextlib.AbstractAsyncContextManager[None]:
        @contextlib.asynccontextmanager
        async def transaction() -> AsyncIterator[None]:
            yield

        return transaction()


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The event type of every value the consumer decodes, in order."""
    seen: list[str] = []
    real = codec_module.decode

    def counting_decode(data: bytes) -> Envelope:
        envelope = real(data)
        seen.append(envelope.event_type)
        return envelope

    async def claim_all(session: Any, name: str, envelopes: Sequence[Envelope]) -> list[Envelope]:
        return list(envelopes)

    monkeypatch.setattr(codec_module, "decode", counting_decode)
    monkeypatch.setattr(consumer_module, "claim", claim_all)
    return seen


def _runner(handled: list[str]) -> ConsumerRunner:
    async def handler(session: Any, envelope: Envelope) -> None:
        handled.append(envelope.event_type)

    return ConsumerRunner(
        name="skips",
        topics=["t"],
        handler=handler,
        sessions=Sessions(),  # type: ignore[arg-type]
        kafka=KafkaConfig("unused"),
        event_types={"Wanted"},
    )


async def test_a_batch_decodes_only_the_records_of_handled_types(decoded: list[str]) -> None:
    handled: list[str] = []
    runner = _runner(handled)
    records = [_record("Other", offset=0), _record("Wanted", offset=1), _record("Other", offset=2)]
    await runner._process_partition(TP, records, None)  # type: ignore[arg-type]
    assert decoded == ["Wanted"]
    assert handled == ["Wanted"]
    assert runner._pending[TP] == 3  # the skipped records are consumed all the same


async def test_a_single_record_of_another_type_is_not_decoded(decoded: list[str]) -> None:
    handled: list[str] = []
    runner = _runner(handled)
    await runner._process_partition(TP, [_record("Other", offset=7)], None)  # type: ignore[arg-type]
    assert decoded == []
    assert handled == []
    assert runner._pending[TP] == 8


async def test_a_record_without_the_header_is_judged_by_its_envelope(decoded: list[str]) -> None:
    handled: list[str] = []
    runner = _runner(handled)
    records = [_record("Other", offset=0, with_headers=False), _record("Wanted", offset=1, with_headers=False)]
    await runner._process_partition(TP, records, None)  # type: ignore[arg-type]
    assert decoded == ["Other", "Wanted"]
    assert handled == ["Wanted"]

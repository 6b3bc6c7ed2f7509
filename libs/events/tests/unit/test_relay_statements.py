"""A relay that has caught up fetches nothing ahead: the rows it sent are marked by the fetch of the next ones."""

from typing import Any

import pytest

from sous_events import outbox as outbox_module
from sous_events.kafka import KafkaConfig
from sous_events.outbox import OutboxRelay
from sous_events.relay_send import SendOutcome

pytestmark = pytest.mark.unit


class RecordingConnection:
    """Answers each fetch with the next prepared rows and records (marked ids, rows in flight) per fetch."""

    def __init__(self, answers: list[list[dict[str, Any]]]) -> None:
        self.answers = answers
        self.fetches: list[tuple[list[int], list[int]]] = []

    async def fetch(self, sql: str, limit: int, acked: list[int], in_flight: list[int]) -> list[dict[str, Any]]:
        self.fetches.append((list(acked), list(in_flight)))
        return self.answers.pop(0) if self.answers else []


def _row(row_id: int) -> dict[str, Any]:
    return {"id": row_id, "topic": "t", "key": "k", "value": b"{}", "headers": "[]"}


async def test_one_statement_per_pass_once_caught_up(monkeypatch: pytest.MonkeyPatch) -> None:
    relay = OutboxRelay(name="unit", database_url="postgresql+asyncpg://u@h/db", kafka=KafkaConfig("unused"))

    async def producer() -> object:
        return object()

    async def send(_: object, rows: list[dict[str, Any]]) -> SendOutcome:
        return SendOutcome(sent=[row["id"] for row in rows])

    monkeypatch.setattr(relay, "_ensure_producer", producer)
    monkeypatch.setattr(outbox_module, "send_rows", send)
    conn = RecordingConnection([[_row(1)], [_row(2)], []])

    assert await relay._publish_batch(conn) == 1  # type: ignore[arg-type]
    assert relay.caught_up
    assert await relay._publish_batch(conn) == 1  # type: ignore[arg-type]
    assert await relay._publish_batch(conn) == 0  # type: ignore[arg-type]
    # Each pass is one fetch, which marks what the previous pass sent; nothing is fetched ahead of a send.
    assert conn.fetches == [([], []), ([1], []), ([2], [])]
    assert relay.published == 2


async def test_a_commit_during_the_send_is_fetched_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    relay = OutboxRelay(name="unit", database_url="postgresql+asyncpg://u@h/db", kafka=KafkaConfig("unused"))

    async def producer() -> object:
        return object()

    async def send(_: object, rows: list[dict[str, Any]]) -> SendOutcome:
        relay._on_notify()  # another transaction committed while these rows were on their way
        return SendOutcome(sent=[row["id"] for row in rows])

    monkeypatch.setattr(relay, "_ensure_producer", producer)
    monkeypatch.setattr(outbox_module, "send_rows", send)
    conn = RecordingConnection([[_row(1)], [_row(2)]])
    relay._wake.set()  # the NOTIFY arrived before the send began
    assert await relay._publish_batch(conn) == 1  # type: ignore[arg-type]
    assert not relay.caught_up
    assert conn.fetches == [([], []), ([], [1])]
    assert [row["id"] for row in relay._ahead] == [2]

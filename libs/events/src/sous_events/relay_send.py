"""Sending one batch of outbox rows, and sorting out which rows went, which can never go, and why.

A row the broker refuses for good (too large, an invalid topic, headers that do not encode) must not hold
up the batch: it is reported for parking and the later rows of its key are held back, so per-key order
is kept while other keys flow. Anything else that fails (the broker is away) is reported as the batch's
error, for the relay to retry after a backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from sous_events.failures import describe, is_unsendable

Row = Any  # an asyncpg Record with id, topic, key, value, headers


@dataclass
class SendOutcome:
    sent: list[int] = field(default_factory=list)
    parked: list[tuple[int, str]] = field(default_factory=list)
    error: BaseException | None = None


class _Batch:
    def __init__(self) -> None:
        self.outcome = SendOutcome()
        self.held: set[str] = set()

    def park(self, row: Row, exc: BaseException) -> None:
        self.outcome.parked.append((int(row["id"]), describe(exc)))
        self.held.add(str(row["key"]))

    def fail(self, exc: BaseException) -> None:
        if self.outcome.error is None:
            self.outcome.error = exc


def _record(row: Row) -> dict[str, Any]:
    headers = row["headers"]
    if isinstance(headers, str):
        headers = orjson.loads(headers)  # header names and values are strings: orjson reads them exactly
    return {
        "topic": row["topic"],
        "value": bytes(row["value"]),
        "key": str(row["key"]).encode(),
        "headers": [(str(k), str(v).encode()) for k, v in headers],
    }


def _refused(exc: BaseException) -> bool:
    # A record that cannot even be built (corrupt headers) is as unsendable as one the broker refuses.
    return is_unsendable(exc) or isinstance(exc, ValueError | TypeError | KeyError)


async def send_rows(producer: Any, rows: Sequence[Row]) -> SendOutcome:
    batch = _Batch()
    in_flight: list[tuple[Row, asyncio.Future[Any]]] = []
    for row in rows:
        if str(row["key"]) in batch.held:
            continue
        try:
            in_flight.append((row, await producer.send(**_record(row))))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not _refused(exc):
                batch.fail(exc)
                break
            batch.park(row, exc)
    results = await asyncio.gather(*(future for _, future in in_flight), return_exceptions=True)
    refused: list[Row] = []
    for (row, _), result in zip(in_flight, results, strict=True):
        if not isinstance(result, BaseException):
            batch.outcome.sent.append(int(row["id"]))
        elif is_unsendable(result):
            refused.append(row)
        else:
            batch.fail(result)
    if refused and batch.outcome.error is None:
        await _isolate(producer, refused, batch)
    return batch.outcome


async def _isolate(producer: Any, refused: list[Row], batch: _Batch) -> None:
    """The broker refused a whole produce request; send its rows one by one to find the culprits."""
    for row in refused:
        if str(row["key"]) in batch.held:
            continue
        try:
            await producer.send_and_wait(**_record(row))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not _refused(exc):
                batch.fail(exc)
                return
            batch.park(row, exc)
        else:
            batch.outcome.sent.append(int(row["id"]))

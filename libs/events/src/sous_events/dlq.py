"""Dead-letter records: what a consumer sends to `<topic>.dlq` and what operators read back.

A dead-lettered record keeps the original value, key and headers and adds why it failed and where it
came from, so it can be inspected and re-driven to its original topic unchanged.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sous_events.failures import is_transient, is_unsendable
from sous_events.topics import dlq_topic

H_CONSUMER = "dlq_consumer"
H_ERROR = "dlq_error"
H_ERROR_TYPE = "dlq_error_type"
H_TRACEBACK = "dlq_traceback"
H_ATTEMPTS = "dlq_attempts"
H_SOURCE = "dlq_source"  # topic/partition/offset of the original record
H_REASON = "dlq_reason"  # undecodable | invalid | handler
H_REDRIVEN = "dlq_redriven_from"  # on a re-driven record: the DLQ record it came from

DLQ_HEADERS = frozenset({H_CONSUMER, H_ERROR, H_ERROR_TYPE, H_TRACEBACK, H_ATTEMPTS, H_SOURCE, H_REASON})


def dead_letter_headers(
    record: Any, *, consumer: str, error: BaseException, attempts: int, reason: str
) -> list[tuple[str, bytes]]:
    original = [(k, v) for k, v in (record.headers or ()) if k not in DLQ_HEADERS and k != H_REDRIVEN]
    return [
        *original,
        (H_CONSUMER, consumer.encode()),
        (H_REASON, reason.encode()),
        (H_ERROR, str(error)[:2000].encode()),
        (H_ERROR_TYPE, type(error).__name__.encode()),
        (H_TRACEBACK, "".join(traceback.format_exception(error))[-4000:].encode()),
        (H_ATTEMPTS, str(attempts).encode()),
        (H_SOURCE, f"{record.topic}/{record.partition}/{record.offset}".encode()),
    ]


def original_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The headers the record had before it was dead-lettered."""
    return [(k, v) for k, v in headers if k not in DLQ_HEADERS and k != H_REDRIVEN]


def source_topic(dlq_topic_name: str, headers: Sequence[tuple[str, bytes]]) -> str:
    for key, value in headers:
        if key == H_SOURCE:
            return value.decode().rsplit("/", 2)[0]
    return dlq_topic_name.removesuffix(".dlq")


async def send_dead_letter(
    producer: Any,
    record: Any,
    headers: list[tuple[str, bytes]],
    *,
    timeout_s: float,
    on_transient: Callable[[int, BaseException], Awaitable[None]],
) -> None:
    """Send the record to its DLQ; while the broker is away, report it (and wait) through `on_transient`.

    A record near the size limit loses its traceback header rather than its place in the DLQ.
    """
    failures = 0
    while True:
        try:
            await asyncio.wait_for(
                producer.send_and_wait(dlq_topic(record.topic), value=record.value, key=record.key, headers=headers),
                timeout_s,
            )
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_unsendable(exc) and any(k == H_TRACEBACK for k, _ in headers):
                headers = [(k, v) for k, v in headers if k != H_TRACEBACK]
                continue
            if not is_transient(exc):
                raise
            # The broker is away: the record waits (uncommitted) rather than being lost.
            failures += 1
            await on_transient(failures, exc)

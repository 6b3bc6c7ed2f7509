"""A consumer's stalled partitions: what is known of each stall, reported as it starts, goes on and ends."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiokafka import TopicPartition

from sous_events.failures import describe

logger = logging.getLogger("sous.consumer")


@dataclass
class Stall:
    since: float
    attempts: int
    last_error: str


def note_stall(
    consumer: str, stalled: dict[TopicPartition, Stall], tp: TopicPartition, attempts: int, error: BaseException
) -> None:
    """Record a transient failure of `tp`; logged at the first attempt and every tenth after."""
    stall = stalled.setdefault(tp, Stall(time.monotonic(), 0, ""))
    stall.attempts, stall.last_error = attempts, describe(error)
    if attempts == 1 or attempts % 10 == 0:
        logger.warning(
            "consumer %s: partition %s/%s stalled for %.0fs (%d attempts): %s; retrying, nothing is dead-lettered",
            consumer,
            tp.topic,
            tp.partition,
            time.monotonic() - stall.since,
            attempts,
            stall.last_error,
        )


def note_resumed(consumer: str, stalled: dict[TopicPartition, Stall], tp: TopicPartition) -> None:
    """Forget the stall of `tp`, if any, saying how long it lasted."""
    stall = stalled.pop(tp, None)
    if stall is not None:
        logger.warning(
            "consumer %s: partition %s/%s resumed after %.1fs and %d transient failures",
            consumer,
            tp.topic,
            tp.partition,
            time.monotonic() - stall.since,
            stall.attempts,
        )

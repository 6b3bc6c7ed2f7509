"""Exponential backoff for step retries: retry_delay * 2^(n-1), capped, with optional jitter."""

from __future__ import annotations

import random


def backoff_delay(
    retry_delay: float,
    failed_attempts: int,
    max_retry_delay: float,
    *,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Delay before the next attempt after `failed_attempts` (1-based) failures.

    `jitter` adds up to that fraction of the delay (never beyond the cap), so retries of many runs spread out.
    """
    if failed_attempts < 1:
        raise ValueError("failed_attempts starts at 1")
    base = max(0.0, retry_delay) * (2 ** (failed_attempts - 1))
    cap = max(0.0, max_retry_delay)
    delay = min(base, cap)
    if jitter > 0 and delay > 0:
        delay = min(cap, delay * (1.0 + jitter * float((rng or random).random())))
    return float(delay)

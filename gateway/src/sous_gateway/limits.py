"""Per-principal rate limits (token bucket) and the request body limit.

Buckets live in the process: with several gateway replicas each enforces its own share. That is
the usual trade-off for a limiter on the hot path; a shared store would add a network round trip.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from sous_service.errors import ApiError


class TokenBucketLimiter:
    def __init__(
        self,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_principals: int = 100_000,
    ) -> None:
        self.rate_per_s = per_minute / 60.0
        self.capacity = float(max(burst, 1))
        self._clock = clock
        self._max = max_principals
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, principal: str) -> float | None:
        """Take one token; None when allowed, else the seconds until a token is available."""
        now = self._clock()
        tokens, stamp = self._buckets.get(principal, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate_per_s)
        if tokens >= 1.0:
            self._store(principal, tokens - 1.0, now)
            return None
        self._store(principal, tokens, now)
        if self.rate_per_s <= 0:
            return 60.0
        return (1.0 - tokens) / self.rate_per_s

    def check(self, principal: str, detail: str = "too many requests; retry later") -> None:
        wait = self.acquire(principal)
        if wait is not None:
            raise too_many(wait, detail)

    def exhausted(self, principal: str) -> float | None:
        """Without taking a token: None while one is available, else the seconds until one is."""
        tokens, stamp = self._buckets.get(principal, (self.capacity, self._clock()))
        tokens = min(self.capacity, tokens + (self._clock() - stamp) * self.rate_per_s)
        if tokens >= 1.0:
            return None
        return (1.0 - tokens) / self.rate_per_s if self.rate_per_s > 0 else 60.0

    def _store(self, principal: str, tokens: float, now: float) -> None:
        if principal not in self._buckets and len(self._buckets) >= self._max:
            self._evict(now)
        self._buckets[principal] = (tokens, now)

    def _evict(self, now: float) -> None:
        """Drop buckets that have refilled completely: forgetting them changes nothing."""
        full_after = self.capacity / self.rate_per_s if self.rate_per_s > 0 else math.inf
        self._buckets = {p: (t, s) for p, (t, s) in self._buckets.items() if now - s < full_after}
        if len(self._buckets) >= self._max:
            self._buckets.clear()


def too_many(wait_s: float, detail: str, code: str = "rate_limited") -> ApiError:
    seconds = max(1, math.ceil(wait_s))
    error = ApiError(429, code, detail, retry_after_s=seconds)
    error.headers["Retry-After"] = str(seconds)
    return error


def payload_too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body exceeds {limit} bytes")

"""Pure rules of a failed step attempt: retry or not, after how long, and crash loops."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sous_executor.domain.outcomes import StepOutcome
from sous_executor.domain.planning import StepSpec

# Failures that a new attempt cannot fix (or that would loop forever if retried).
NOT_RETRYABLE = frozenset({"budget", "tool_not_allowed", "config_error", "prompt_error", "crash_loop"})
DEFAULT_MAX_RETRIES = 1
DEFAULT_RETRY_DELAY_S = 5.0
DEFAULT_MAX_RETRY_DELAY_S = 300.0


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    outcome: StepOutcome | None  # after a final failure: STOP, CONTINUE or BUDGET; None while retrying


@dataclass(frozen=True)
class RetryRule:
    """A step's retry settings: its own values, else the recipe's execution_config, else the defaults."""

    error_handling: str
    max_retries: int
    retry_delay: float
    max_retry_delay: float

    @classmethod
    def of(cls, spec: StepSpec, config: Mapping[str, Any]) -> RetryRule:
        return cls(
            error_handling=spec.error_handling,
            max_retries=spec.max_retries
            if spec.max_retries is not None
            else int(config.get("max_retries", DEFAULT_MAX_RETRIES)),
            retry_delay=float(
                spec.retry_delay if spec.retry_delay is not None else config.get("retry_delay", DEFAULT_RETRY_DELAY_S)
            ),
            max_retry_delay=float(config.get("max_retry_delay", DEFAULT_MAX_RETRY_DELAY_S)),
        )

    def after_failure(self, error_type: str, attempt: int) -> RetryDecision:
        return after_failure(error_type, self.error_handling, attempt, self.max_retries)

    def delay(self, failed_attempts: int, *, jitter: float = 0.0, rng: random.Random | None = None) -> float:
        return backoff_delay(self.retry_delay, failed_attempts, self.max_retry_delay, jitter=jitter, rng=rng)


def after_failure(error_type: str, error_handling: str, attempt: int, max_retries: int) -> RetryDecision:
    """A failed attempt (1-based) retries under `retry` while attempts <= max_retries; then the handling rules."""
    if error_handling == "retry" and error_type not in NOT_RETRYABLE and attempt <= max_retries:
        return RetryDecision(True, None)
    if error_type == "budget":
        return RetryDecision(False, StepOutcome.BUDGET)
    return RetryDecision(False, StepOutcome.CONTINUE if error_handling == "continue" else StepOutcome.STOP)


def is_crash_loop(unfinished_starts: int, limit: int) -> bool:
    """A step started `limit` times in a row with no outcome recorded: the runner keeps dying on it."""
    return unfinished_starts >= limit


def backoff_delay(
    retry_delay: float,
    failed_attempts: int,
    max_retry_delay: float,
    *,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Delay before the next attempt after `failed_attempts` (1-based) failures: retry_delay * 2^(n-1), capped.

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

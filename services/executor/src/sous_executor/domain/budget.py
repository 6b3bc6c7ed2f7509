"""Run budgets across parallel steps: a model call reserves its estimated tokens before it is made.

The runner holding the lease is the only one calling the model for a run, so the ledger lives in that
runner's memory. A call is admitted while `spent + reserved + estimate <= limit`; when that fails but
other calls are in flight the caller waits for them to settle and asks again; with nothing in flight it
is refused once the budget is spent. So the spend can pass the limit only by what calls use beyond their
estimate (bounded by the request's `max_tokens` when the agent sets one) and by one call started alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4


def estimate_prompt_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def estimate_call(prompt_chars: int, max_tokens: int | None, default_completion: int) -> int:
    return estimate_prompt_tokens(prompt_chars) + (max_tokens if max_tokens else default_completion)


@dataclass(frozen=True)
class Limits:
    max_tokens: int | None = None
    max_cost_usd: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.max_tokens is None and self.max_cost_usd is None


def exceeded(limits: Limits, tokens: int, cost: float) -> str | None:
    """Why the spend is over budget (None while within it)."""
    if limits.max_tokens is not None and tokens > limits.max_tokens:
        return f"token budget exceeded: {tokens} > max_tokens {limits.max_tokens}"
    if limits.max_cost_usd is not None and cost > limits.max_cost_usd:
        return f"cost budget exceeded: {cost:.6f} > max_cost_usd {limits.max_cost_usd}"
    return None


def exhausted(limits: Limits, tokens: int, cost: float) -> str | None:
    """Why no new call may start (None while some budget is left)."""
    if limits.max_tokens is not None and tokens >= limits.max_tokens:
        return f"token budget exhausted: {tokens} of max_tokens {limits.max_tokens} spent"
    if limits.max_cost_usd is not None and cost >= limits.max_cost_usd:
        return f"cost budget exhausted: {cost:.6f} of max_cost_usd {limits.max_cost_usd} spent"
    return None


@dataclass
class Ledger:
    limits: Limits
    reserved: dict[int, int] = field(default_factory=dict)
    _next: int = 0

    def admit(self, spent_tokens: int, spent_cost: float, estimate: int) -> tuple[str, int | None]:
        """("go", ticket) | ("wait", None) | ("refuse", None) for a call estimated at `estimate` tokens."""
        if self.limits.unlimited:
            return "go", self._take(0)
        if exhausted(self.limits, spent_tokens, spent_cost) is not None:
            return "refuse", None
        in_flight = sum(self.reserved.values())
        fits = self.limits.max_tokens is None or spent_tokens + in_flight + estimate <= self.limits.max_tokens
        if fits or not self.reserved:
            return "go", self._take(estimate)
        return "wait", None

    def settle(self, ticket: int) -> None:
        self.reserved.pop(ticket, None)

    def _take(self, estimate: int) -> int:
        self._next += 1
        self.reserved[self._next] = estimate
        return self._next

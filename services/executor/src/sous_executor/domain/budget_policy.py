"""Run budgets: when a run is over its budget, and how parallel model calls share what is left.

One rule decides both questions: a limit is breached by spend above it (the run fails: it is over
budget) or, before a new model call, by spend that has reached it (no call may start: it is spent).

The runner holding the lease is the only one calling the model for a run, so the ledger lives in that
runner's memory. A call is admitted while `spent + reserved + estimate <= limit`; when that fails but
other calls are in flight the caller waits for them to settle and asks again; with nothing in flight it
is refused once the budget is spent. So the spend can pass the limit only by what calls use beyond their
estimate (bounded by the request's `max_tokens` when the agent sets one) and by one call started alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

CHARS_PER_TOKEN = 4


class Admission(StrEnum):
    GO = "go"
    WAIT = "wait"
    REFUSE = "refuse"


def estimate_prompt_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def estimate_call(prompt_chars: int, max_tokens: int | None, default_completion: int) -> int:
    return estimate_prompt_tokens(prompt_chars) + (max_tokens if max_tokens else default_completion)


@dataclass(frozen=True)
class Limits:
    max_tokens: int | None = None
    max_cost_usd: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        """The limits a recipe's execution_config sets (after the workspace quota capped them)."""
        tokens, cost = config.get("max_tokens"), config.get("max_cost_usd")
        return cls(
            max_tokens=int(tokens) if tokens is not None else None,
            max_cost_usd=float(cost) if cost is not None else None,
        )

    @property
    def unlimited(self) -> bool:
        return self.max_tokens is None and self.max_cost_usd is None


def _breach(limits: Limits, tokens: int, cost: float, *, at_limit: bool) -> tuple[str, str, str] | None:
    """The first limit the spend breaches: (budget, spent, limit) as text; at_limit counts reaching it."""
    checks: tuple[tuple[str, float, float | None, str, str], ...] = (
        ("token", tokens, limits.max_tokens, str(tokens), "max_tokens"),
        ("cost", cost, limits.max_cost_usd, f"{cost:.6f}", "max_cost_usd"),
    )
    for budget, spent, limit, shown, name in checks:
        if limit is not None and (spent >= limit if at_limit else spent > limit):
            return budget, shown, f"{name} {limit}"
    return None


def exceeded(limits: Limits, tokens: int, cost: float) -> str | None:
    """Why the spend is over budget (None while within it): the run fails."""
    breach = _breach(limits, tokens, cost, at_limit=False)
    return None if breach is None else f"{breach[0]} budget exceeded: {breach[1]} > {breach[2]}"


def exhausted(limits: Limits, tokens: int, cost: float) -> str | None:
    """Why no new call may start (None while some budget is left)."""
    breach = _breach(limits, tokens, cost, at_limit=True)
    return None if breach is None else f"{breach[0]} budget exhausted: {breach[1]} of {breach[2]} spent"


@dataclass
class Ledger:
    limits: Limits
    reserved: dict[int, int] = field(default_factory=dict)
    _next: int = 0

    def admit(self, spent_tokens: int, spent_cost: float, estimate: int) -> tuple[Admission, int | None]:
        """(GO, ticket) | (WAIT, None) | (REFUSE, None) for a call estimated at `estimate` tokens."""
        if self.limits.unlimited:
            return Admission.GO, self._take(0)
        if exhausted(self.limits, spent_tokens, spent_cost) is not None:
            return Admission.REFUSE, None
        in_flight = sum(self.reserved.values())
        fits = self.limits.max_tokens is None or spent_tokens + in_flight + estimate <= self.limits.max_tokens
        if fits or not self.reserved:
            return Admission.GO, self._take(estimate)
        return Admission.WAIT, None

    def settle(self, ticket: int) -> None:
        self.reserved.pop(ticket, None)

    def _take(self, estimate: int) -> int:
        self._next += 1
        self.reserved[self._next] = estimate
        return self._next

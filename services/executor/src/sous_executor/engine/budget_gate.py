"""The run's budget gate: model calls of parallel steps reserve tokens before they are made."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sous_executor.domain.budget_policy import Admission, Ledger, Limits, exceeded


class BudgetRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetGate:
    def __init__(self, limits: Limits, spent: Callable[[], tuple[int, float]]) -> None:
        self.ledger = Ledger(limits)
        self.spent = spent
        self._changed = asyncio.Condition()

    async def acquire(self, estimate: int) -> int:
        """A ticket for one call; waits while other calls' reservations leave no room; refuses when spent."""
        async with self._changed:
            while True:
                tokens, cost = self.spent()
                verdict, ticket = self.ledger.admit(tokens, cost, estimate)
                if verdict == Admission.GO and ticket is not None:
                    return ticket
                if verdict == Admission.REFUSE:
                    limits = self.ledger.limits
                    raise BudgetRefused(
                        f"budget exhausted before a model call: {tokens} tokens of max_tokens {limits.max_tokens}, "
                        f"{cost:.6f} of max_cost_usd {limits.max_cost_usd}; "
                        f"this call would need about {estimate} more tokens"
                    )
                await self._changed.wait()

    def over(self) -> str | None:
        """Why the run is over its budget (None while within it)."""
        return exceeded(self.ledger.limits, *self.spent())

    async def release(self, ticket: int) -> None:
        async with self._changed:
            self.ledger.settle(ticket)
            self._changed.notify_all()

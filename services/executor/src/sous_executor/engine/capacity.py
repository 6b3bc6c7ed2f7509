"""A cap on the runs one instance carries at a time (`SOUS_EXECUTOR_MAX_INFLIGHT`).

A slot is reserved when the consumer claims a requested execution (inside its inbox transaction) or the
sweeper takes one over, and occupied until the run ends. A request that finds no free slot is not
claimed: it stays pending, with no lease, until an instance with room picks it up (engine/sweeper.py).
"""

from __future__ import annotations

import time

# A reservation whose claim never committed (its transaction rolled back) is forgotten after this.
RESERVATION_TTL_S = 60.0


class Capacity:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: set[str] = set()
        self._reserved: dict[str, float] = {}

    def _expire(self) -> None:
        horizon = time.monotonic() - RESERVATION_TTL_S
        for execution_id in [e for e, at in self._reserved.items() if at < horizon]:
            del self._reserved[execution_id]

    @property
    def used(self) -> int:
        self._expire()
        return len(self._running | set(self._reserved))

    @property
    def free(self) -> int:
        return max(0, self.limit - self.used)

    def holds(self, execution_id: str) -> bool:
        return execution_id in self._running or execution_id in self._reserved

    def reserve(self, execution_id: str) -> bool:
        """Hold a slot for a run about to be claimed; False when the instance is full."""
        if self.holds(execution_id):
            return True
        if self.free <= 0:
            return False
        self._reserved[execution_id] = time.monotonic()
        return True

    def occupy(self, execution_id: str) -> None:
        self._reserved.pop(execution_id, None)
        self._running.add(execution_id)

    def unreserve(self, execution_id: str) -> None:
        """A reservation whose claim did not happen (another instance, or a sweeper, has the run)."""
        self._reserved.pop(execution_id, None)

    def release(self, execution_id: str) -> None:
        self._reserved.pop(execution_id, None)
        self._running.discard(execution_id)

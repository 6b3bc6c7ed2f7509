"""Starts wait for their turn in memory, not on pooled database connections.

A start takes its workspace's advisory lock in its transaction (the concurrency limit and the runs-per-day
count are checked under it), so starts of one workspace run one after the other anyway. Without this gate a
burst of N starts checks out N connections that then sit waiting on that lock, and the runs in flight find
the pool empty: their heartbeats and appends time out. Through the gate, an instance holds at most one
connection per workspace for starting, and no more than `concurrent_starts` over all workspaces, so a burst
across many workspaces leaves the rest of the pool to the runs in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class StartGate:
    def __init__(self, concurrent_starts: int) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}
        self._slots = asyncio.Semaphore(concurrent_starts)

    @asynccontextmanager
    async def turn(self, workspace_id: str) -> AsyncIterator[None]:
        """Waits for the workspace's earlier starts in this instance and for a free slot, then holds both."""
        lock = self._locks.setdefault(workspace_id, asyncio.Lock())
        self._holders[workspace_id] = self._holders.get(workspace_id, 0) + 1
        try:
            async with lock, self._slots:
                yield
        finally:
            self._holders[workspace_id] -= 1
            if not self._holders[workspace_id]:  # nobody waits: the lock is forgotten, the map stays small
                del self._holders[workspace_id], self._locks[workspace_id]

    def waiting(self, workspace_id: str) -> int:
        """Starts of the workspace in the gate (the one holding its turn included)."""
        return self._holders.get(workspace_id, 0)

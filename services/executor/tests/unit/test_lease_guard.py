"""Unit tests: the lease guard leaves out heartbeats a step boundary has just made redundant."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sous_executor.engine.fence import LeaseGuard

pytestmark = pytest.mark.unit


class CountingLeases:
    def __init__(self) -> None:
        self.beats = 0

    async def heartbeat(self, execution_id: str) -> bool:
        self.beats += 1
        return True


def guard(leases: Any) -> LeaseGuard:
    g = LeaseGuard(leases, "e", ttl_s=30.0, heartbeat_s=0.02, poll_s=0.005)
    g.renewed(time.monotonic())
    return g


async def run_polls(g: LeaseGuard, polls: int, *, appending: bool) -> None:
    """Watch until `polls` polls went by, each (when `appending`) after a step boundary renewed the lease."""
    seen = 0
    started = time.monotonic()

    async def poll() -> None:
        nonlocal seen
        seen += 1
        if appending:
            g.renewed(time.monotonic())
        # Enough polls, and more than several heartbeat intervals: a guard that beats has beaten by now.
        if seen >= polls and time.monotonic() - started > 5 * g.heartbeat_s:
            g.lost.set()

    await g.watch(poll)


async def test_a_run_that_keeps_appending_sends_no_heartbeats() -> None:
    leases = CountingLeases()
    await run_polls(guard(leases), 20, appending=True)
    assert leases.beats == 0


async def test_a_run_that_does_not_append_keeps_heartbeating() -> None:
    leases = CountingLeases()
    await run_polls(guard(leases), 20, appending=False)
    assert leases.beats >= 1

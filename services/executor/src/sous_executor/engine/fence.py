"""Fencing a run by its lease: the runner acts only while it can prove the lease is still its own.

The lease's expiry in the database is set by each heartbeat to `now() + ttl`. The guard remembers the
monotonic time just before it sent the last successful heartbeat: that plus the ttl is never later than
the expiry the database recorded, so once it has passed another instance may own the run and this one
must not call a model or a tool again. Transient database errors do not stop the heartbeat (it retries
with backoff); only an expired deadline or a heartbeat that finds the lease taken does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import exc as sa_exc

from sous_executor.adapters.leases import LeaseLost, Leases

logger = logging.getLogger("sous.executor.fence")
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    OSError,
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, TRANSIENT_ERRORS)


class LeaseGuard:
    def __init__(self, leases: Leases, execution_id: str, ttl_s: float, heartbeat_s: float, poll_s: float) -> None:
        self.leases = leases
        self.execution_id = execution_id
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self.valid_until = time.monotonic()
        self.last_renewal = float("-inf")  # monotonic send time of the last statement that extended the lease
        self.lost = asyncio.Event()
        self.failed_beats = 0

    def remaining(self) -> float:
        return self.valid_until - time.monotonic()

    def check(self) -> None:
        """Raise LeaseLost unless the lease is provably still ours (call before every side effect)."""
        if self.lost.is_set() or self.remaining() <= 0:
            self.lost.set()
            raise LeaseLost(self.execution_id)

    async def beat(self) -> None:
        """One heartbeat; raises on a database error, sets `lost` when the lease is no longer ours."""
        sent = time.monotonic()
        timeout = max(0.05, self.remaining()) if self.valid_until > sent else self.ttl_s
        renewed = await asyncio.wait_for(self.leases.heartbeat(self.execution_id), timeout)
        if not renewed:
            self.lost.set()
            raise LeaseLost(self.execution_id)
        self.renewed(sent)
        self.failed_beats = 0

    def renewed(self, sent: float) -> None:
        """The lease was extended by a statement sent at monotonic time `sent` (a heartbeat or an append)."""
        self.valid_until = max(self.valid_until, sent + self.ttl_s)
        self.last_renewal = max(self.last_renewal, sent)

    async def watch(self, poll: Callable[[], Awaitable[None]]) -> None:
        """Heartbeat and poll (e.g. for a cancel) until the lease is lost; never dies of a transient error."""
        next_beat = time.monotonic() + self.heartbeat_s
        while not self.lost.is_set():
            now = time.monotonic()
            await asyncio.sleep(max(0.0, min(self.poll_s, next_beat - now, self.remaining())))
            if self.remaining() <= 0:
                logger.warning("execution %s: lease could not be renewed in time; fencing", self.execution_id)
                self.lost.set()
                return
            if time.monotonic() >= next_beat and self.last_renewal + self.heartbeat_s > time.monotonic():
                # A step boundary extended the lease lately: a heartbeat now would only repeat it.
                next_beat = self.last_renewal + self.heartbeat_s
            elif time.monotonic() >= next_beat:
                try:
                    await self.beat()
                    next_beat = time.monotonic() + self.heartbeat_s
                except LeaseLost:
                    return
                except Exception as error:
                    # Retry sooner than a normal beat, backing off, while the deadline allows.
                    self.failed_beats += 1
                    delay = min(self.heartbeat_s, 0.05 * 2**self.failed_beats)
                    next_beat = time.monotonic() + delay
                    logger.info("execution %s: heartbeat failed (%s); retrying", self.execution_id, error)
            try:
                await asyncio.wait_for(poll(), max(0.05, self.remaining()))
            except Exception as error:
                logger.debug("execution %s: poll failed: %s", self.execution_id, error)

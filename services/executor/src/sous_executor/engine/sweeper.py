"""The sweeper: in every instance, takes over executions whose lease expired and resumes them.

It also starts requested executions that no instance claimed because all were full when the request
arrived (`SOUS_EXECUTOR_MAX_INFLIGHT`); it never takes more than the instance has room for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sous_executor.engine.step_engine import StepEngine

logger = logging.getLogger("sous.executor.sweeper")


class Sweeper:
    def __init__(self, engine: StepEngine, interval_s: float) -> None:
        self.engine = engine
        self.interval_s = interval_s
        # Requests younger than this are left to the consumer (it may simply not have read them yet).
        self.pending_grace_s = engine.settings.pending_claim_grace_s
        self.resumed = 0
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> list[str]:
        capacity = self.engine.capacity
        claimed = await self.engine.leases.claim_expired(limit=capacity.free) if capacity.free else []
        for execution_id in claimed:
            logger.info("resuming execution %s (previous owner's lease expired)", execution_id)
            if self.engine.spawn(execution_id):
                self.resumed += 1
        waiting = await self.engine.leases.claim_pending(capacity.free, self.pending_grace_s) if capacity.free else []
        for execution_id in waiting:
            logger.info("starting execution %s (it waited for a free slot)", execution_id)
            self.engine.spawn(execution_id)
        return claimed + waiting

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("sweep failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="executor-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

"""The sweeper: in every instance, takes over executions whose lease expired and resumes them.

It also starts requested executions that no instance claimed because all were full when the request
arrived (`SOUS_EXECUTOR_MAX_INFLIGHT`); it never takes more than the instance has room for.
"""

from __future__ import annotations

import logging

from sous_executor.engine.step_engine import StepEngine
from sous_service.periodic import Periodic

logger = logging.getLogger("sous.executor.sweeper")


class Sweeper(Periodic):
    name = "executor-sweeper"
    what = "sweep"

    def __init__(self, engine: StepEngine, interval_s: float) -> None:
        super().__init__(interval_s, logger)
        self.engine = engine
        # Requests younger than this are left to the consumer (it may simply not have read them yet).
        self.pending_grace_s = engine.settings.pending_claim_grace_s
        self.resumed = 0

    async def tick(self) -> list[str]:
        return await self.sweep_once()

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

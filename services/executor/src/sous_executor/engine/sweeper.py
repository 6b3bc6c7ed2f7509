"""The sweeper: in every instance, takes over executions whose lease expired and resumes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sous_executor.engine.runner import Engine

logger = logging.getLogger("sous.executor.sweeper")


class Sweeper:
    def __init__(self, engine: Engine, interval_s: float) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.resumed = 0
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> list[str]:
        claimed = await self.engine.leases.claim_expired()
        for execution_id in claimed:
            logger.info("resuming execution %s (previous owner's lease expired)", execution_id)
            if self.engine.spawn(execution_id):
                self.resumed += 1
        return claimed

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

"""A background loop beside the API: one tick every interval, whose failures are logged, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging


class Periodic:
    """Subclasses name the task (`name`), say what a tick does for the logs (`what`) and define `tick`."""

    name = "periodic"
    what = "tick"

    def __init__(self, interval_s: float, logger: logging.Logger) -> None:
        self.interval_s = interval_s
        self.logger = logger
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> object:
        raise NotImplementedError

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.logger.warning("%s failed: %s", self.what, exc)
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

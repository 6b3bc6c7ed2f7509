"""The cancel flags of the runs in flight, read together.

Every run polls its execution's flag a few times a second. Polls that arrive within one short window share
a single statement (outside any transaction: one round trip), so the cost grows with the polling rate of
the instance, not with the number of runs it holds.
"""

from __future__ import annotations

import asyncio

from sous_service.statement_pool import StatementPool

READ_FLAGS = "SELECT execution_id FROM executions WHERE execution_id = ANY($1::text[]) AND cancel_requested"
DEFAULT_WINDOW_S = 0.02


class CancelFlags:
    def __init__(self, statements: StatementPool, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.statements = statements
        self.window_s = window_s
        self._waiting: dict[str, list[asyncio.Future[bool]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def requested(self, execution_id: str) -> bool:
        """Whether a cancel was requested for the execution (as of a read at most one window from now)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(execution_id, []).append(future)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
        return await future

    async def _read(self) -> None:
        await asyncio.sleep(self.window_s)
        waiting, self._waiting, self._reader = self._waiting, {}, None
        try:
            flagged = {row[0] for row in await self.statements.fetch(READ_FLAGS, list(waiting))}
        except Exception as error:
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            return
        for execution_id, futures in waiting.items():
            for future in futures:
                if not future.done():
                    future.set_result(execution_id in flagged)

"""Assessing a run the moment the executor says it finished: the executor's word, then the copy catching up.

The quality service scores runs from its copy of them, fed by the executor's events. Right after a run
ends (most visibly on Apache Kafka) that copy may still say `running`, or not know the run at all. The
executor owns the run, so it is asked; when it says the run finished, the request waits (bounded) for the
run's events to reach the copy, and scores the run from them as always.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_quality.adapters import copies
from sous_service.owner_reads import OwnerReads
from sous_service.scopes import EXECUTIONS_READ

FINISHED = ("completed", "failed", "cancelled")


class ExecutionCatchUp:
    def __init__(
        self, owner: OwnerReads, sessions: async_sessionmaker[AsyncSession], *, wait_s: float, poll_s: float = 0.1
    ) -> None:
        self.owner = owner
        self.sessions = sessions
        self.wait_s = wait_s
        self.poll_s = poll_s

    async def finished_at_owner(self, workspace_id: str, template_id: str, execution_id: str) -> bool:
        path = f"/api/workflow-recipes/{quote(template_id, safe='')}/executions/{quote(execution_id, safe='')}"
        answer = await self.owner.get(workspace_id, EXECUTIONS_READ, path)
        return answer is not None and answer.status == 200 and answer.body.get("status") in FINISHED

    async def copy_finished(self, workspace_id: str, template_id: str, execution_id: str) -> bool:
        """Whether the copy has the run finished, waiting up to `wait_s` for its events."""
        deadline = time.monotonic() + self.wait_s
        while True:
            async with self.sessions() as session:
                row = await copies.find_execution(session, workspace_id, template_id, execution_id)
            if row is not None and row["status"] in FINISHED:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(self.poll_s)

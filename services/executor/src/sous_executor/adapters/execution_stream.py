"""A run's reads and writes of its execution: the stream, the fenced append, the cancel flag.

Every append checks (and, while the run goes on, extends) the lease in the same transaction as the
events and the read-model row, so a runner that lost its lease cannot write.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope
from sous_events.store import EventStore
from sous_executor.adapters.leases import Leases
from sous_executor.adapters.repositories import project_execution
from sous_executor.adapters.tables import executions
from sous_executor.domain.execution import Execution

PRODUCER = "executor"
AGGREGATE = "Execution"


class ExecutionStream:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: EventStore, leases: Leases) -> None:
        self.sessions = sessions
        self.store = store
        self.leases = leases

    async def load(self, execution_id: str) -> list[Envelope]:
        async with self.sessions() as session:
            return await self.store.load(session, AGGREGATE, execution_id)

    async def append(self, execution: Execution, envelopes: Sequence[Envelope], *, finish: bool) -> None:
        """Append under the lease and fold into `execution`; `finish` closes the lease with the last event.

        Raises ConcurrencyConflict when someone else appended first (`execution` is then stale).
        """
        execution_id = execution.execution_id
        async with self.sessions() as session, session.begin():
            await self.leases.assert_owner(session, execution_id, renew=not finish)
            await self.store.append(session, envelopes, expected_version=execution.version)
            for envelope in envelopes:
                execution.apply(envelope)
            await project_execution(session, execution)
            if finish:
                await self.leases.mark_finished(session, execution_id)

    async def close(self, execution_id: str) -> None:
        """Close the lease of an execution there is nothing to run for."""
        async with self.sessions() as session, session.begin():
            await self.leases.mark_finished(session, execution_id)

    async def cancel_requested(self, execution_id: str) -> bool:
        async with self.sessions() as session:
            flag = (
                await session.execute(
                    select(executions.c.cancel_requested).where(executions.c.execution_id == execution_id)
                )
            ).scalar_one_or_none()
        return bool(flag)

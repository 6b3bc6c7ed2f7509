"""The step engine: what every run on this instance shares, and the runs it has under way.

It starts a Run for each execution whose lease this instance holds, keeps them within the instance's
capacity, signals cancels to them and stops them (releasing their leases) when the service stops.

A run is claimed by the instance that accepts its request, in the transaction that appends its
ExecutionRequested (`reserve_here`), when that instance has room; it starts as soon as that transaction
commits, with no trip through the broker. The runner consumer still reads every ExecutionRequested: it
finds the lease taken and skips, or claims the runs no accepting instance could take. If the accepting
process dies after the commit, the lease expires and the sweeper of any instance resumes the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope
from sous_events.store import EventStore
from sous_executor.adapters.execution_stream import ExecutionStream
from sous_executor.adapters.leases import LeaseLost, Leases
from sous_executor.config import ExecutorSettings
from sous_executor.domain.execution import Execution
from sous_executor.engine.capacity import Capacity
from sous_executor.engine.runner import Claimed, Run
from sous_executor.llm.client import ClientFactory
from sous_executor.tools.router import ToolRouter
from sous_service.statement_pool import StatementPool
from sous_service.unit_of_work import UnitOfWork

logger = logging.getLogger("sous.executor.runner")
CLAIMED_ON_ACCEPT_KEPT = 10_000


class StepEngine:
    """Everything runs share: sessions, store, leases, model clients, tools; and the local runs."""

    def __init__(
        self,
        *,
        settings: ExecutorSettings,
        sessions: async_sessionmaker[AsyncSession],
        store: EventStore,
        router: ToolRouter,
        clients: ClientFactory,
        statements: StatementPool,
    ) -> None:
        self.settings = settings
        self.router = router
        self.clients = clients
        self.leases = Leases(sessions, settings.runner_id, settings.lease_ttl_s)
        self.stream = ExecutionStream(sessions, store, self.leases, statements)
        self.capacity = Capacity(settings.max_inflight)
        self.runs: dict[str, Run] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        # Runs this instance claimed in the transaction that requested them, until the runner consumer has
        # passed over their request (bounded: another instance's consumer may read that partition).
        self._claimed_on_accept: dict[str, None] = {}

    def reserve_here(self, uow: UnitOfWork, execution: Execution, stream: list[Envelope]) -> bool:
        """Reserve a slot for a run being requested in `uow`'s transaction, and start it once that commits.

        True: the caller writes the run's lease for this instance in that transaction
        (`execution_stream.append_requested`). `stream`: the events that transaction appends to the
        execution's stream, `execution` what they fold into; the caller completes both before the commit,
        and the run starts from them. False when
        this instance is full or stopping: the run then waits for the runner consumer or the sweeper of an
        instance with room. A transaction that does not commit gives the slot back.
        """
        execution_id = stream[0].aggregate_id
        if self._stopping or self.capacity.holds(execution_id) or not self.capacity.reserve(execution_id):
            return False
        uow.after_rollback(lambda: self.capacity.unreserve(execution_id))
        sent = time.monotonic()  # before the lease is written: the fence counts from no later than its expiry

        def started() -> None:
            self._remember_claimed(execution_id)
            self.spawn(execution_id, claimed=Claimed(execution, stream[0].traceparent, sent))

        uow.after_commit(started)
        return True

    def _remember_claimed(self, execution_id: str) -> None:
        self._claimed_on_accept[execution_id] = None
        while len(self._claimed_on_accept) > CLAIMED_ON_ACCEPT_KEPT:
            del self._claimed_on_accept[next(iter(self._claimed_on_accept))]

    def claimed_on_accept(self, key: bytes | None) -> bool:
        """Whether the request keyed `key` is one this instance claimed with the request itself (its lease was
        written with it, so no consumer can claim it): its record needs no decoding, claim nor inbox row."""
        if key is None:
            return False
        execution_id = key.decode(errors="replace")
        if execution_id not in self._claimed_on_accept:
            return False
        del self._claimed_on_accept[execution_id]
        return True

    def spawn(self, execution_id: str, *, claimed: Claimed | None = None) -> bool:
        """Start running an execution whose lease this instance holds (no-op if already running here).

        `claimed`: this instance has just claimed it, with the events it wrote (the run need not load them).
        """
        if execution_id in self._tasks:
            return False
        if self._stopping:
            self.capacity.release(execution_id)
            return False
        self.capacity.occupy(execution_id)
        run = Run(self, execution_id, claimed=claimed)
        self.runs[execution_id] = run
        task = asyncio.create_task(self._guarded(run), name=f"run-{execution_id}")
        self._tasks[execution_id] = task
        return True

    async def _guarded(self, run: Run) -> None:
        try:
            await run.execute()
        except LeaseLost:
            logger.info("execution %s: lease lost, stopping", run.execution_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("execution %s: runner crashed; the sweeper will resume it", run.execution_id)
            # Let a sweeper resume it now rather than after the ttl (a crash loop is caught by its counter).
            with contextlib.suppress(Exception):
                await self.leases.release(run.execution_id)
        finally:
            self.runs.pop(run.execution_id, None)
            self._tasks.pop(run.execution_id, None)
            self.capacity.release(run.execution_id)

    def signal_cancel(self, execution_id: str) -> None:
        run = self.runs.get(execution_id)
        if run is not None:
            run.cancel_event.set()

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def stop(self) -> None:
        self._stopping = True
        tasks = dict(self._tasks)
        for task in tasks.values():
            task.cancel()
        for execution_id, task in tasks.items():
            with contextlib.suppress(BaseException):
                await task
            with contextlib.suppress(Exception):
                await self.leases.release(execution_id)
        await self.clients.close()

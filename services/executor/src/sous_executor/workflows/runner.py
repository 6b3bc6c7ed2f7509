"""Runs workflow runs: one owner at a time per run (a lease row), taken over when the owner dies.

A run's state is its event stream. The driver folds it, finds the first stage not completed and carries
on from there, so a run resumed on another instance never repeats a completed stage; stage 4 only waits
again for the execution it started (recorded in the same transaction as that execution's request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope, EventPayload
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, EventStore
from sous_executor.config import ExecutorSettings
from sous_executor.handlers import ExecutorService
from sous_executor.llm.client import ClientFactory
from sous_executor.workflows import repository as repo
from sous_executor.workflows.driver import RunDriver
from sous_executor.workflows.errors import RunLeaseLost
from sous_executor.workflows.model import WORKFLOW_RUN, WorkflowRun
from sous_executor.workflows.projection import apply_run_side_effects
from sous_service.periodic import Periodic

logger = logging.getLogger("sous.executor.workflows")
PRODUCER = "executor"
Extra = Callable[[AsyncSession], Awaitable[None]]


@dataclass(frozen=True)
class WorkflowTimings:
    """How long stages wait for the quality service and for agents to reach the executor's copy of the
    catalog, and how often waits look again."""

    quality_wait_s: float = 60.0
    agent_wait_s: float = 30.0
    poll_s: float = 0.25
    busy_retry_s: float = 2.0


class WorkflowSweeper(Periodic):
    """Claims the runs no live instance holds (their owner died), every sweeper interval."""

    name = "workflow-sweeper"
    what = "workflow sweep"

    def __init__(self, runner: WorkflowRunner, interval_s: float) -> None:
        super().__init__(interval_s, logger)
        self.runner = runner

    async def tick(self) -> list[str]:
        return await self.runner.sweep_once()


class WorkflowRunner:
    def __init__(
        self,
        *,
        settings: ExecutorSettings,
        sessions: async_sessionmaker[AsyncSession],
        store: EventStore,
        service: ExecutorService,
        clients: ClientFactory,
        timings: WorkflowTimings | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.service = service
        self.clients = clients
        self.timings = timings or WorkflowTimings()
        self.owner = settings.runner_id
        self.ttl_s = settings.lease_ttl_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sweeper = WorkflowSweeper(self, settings.sweeper_interval_s)
        self._stopping = False
        self.resumed = 0

    # ------------------------------------------------------------ lifecycle
    def spawn(self, run_id: str) -> bool:
        if self._stopping or run_id in self._tasks:
            return False
        self._tasks[run_id] = asyncio.create_task(self._guarded(run_id), name=f"workflow-run-{run_id}")
        return True

    async def _guarded(self, run_id: str) -> None:
        driver = RunDriver(self, run_id)
        try:
            await driver.drive()
        except RunLeaseLost:
            logger.info("workflow run %s: lease lost, stopping", run_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("workflow run %s crashed; the sweeper will resume it", run_id)
        finally:
            self._tasks.pop(run_id, None)

    async def sweep_once(self) -> list[str]:
        async with self.sessions() as session, session.begin():
            claimed = await repo.claim_expired_leases(session, self.owner, self.ttl_s)
        for run_id in claimed:
            logger.info("resuming workflow run %s (previous owner's lease expired)", run_id)
            if self.spawn(run_id):
                self.resumed += 1
        return claimed

    async def start(self) -> None:
        await self._sweeper.start()

    async def stop(self) -> None:
        self._stopping = True
        await self._sweeper.stop()
        tasks = dict(self._tasks)
        for task in tasks.values():
            task.cancel()
        for run_id, task in tasks.items():
            with contextlib.suppress(BaseException):
                await task
            with contextlib.suppress(Exception):
                async with self.sessions() as session, session.begin():
                    await repo.release_lease(session, run_id, self.owner)

    @property
    def active(self) -> int:
        return len(self._tasks)

    # ------------------------------------------------------------ persistence shared by drivers
    async def load(self, run_id: str) -> WorkflowRun:
        async with self.sessions() as session:
            return WorkflowRun.from_events(await self.store.load(session, WORKFLOW_RUN, run_id))

    async def append(
        self, run: WorkflowRun, payloads: Sequence[EventPayload], *, finish: bool = False, extra: Extra | None = None
    ) -> WorkflowRun:
        """Append to the run's stream while holding its lease; returns the run with the events applied."""
        for _ in range(10):
            base = run.version
            envelopes: list[Envelope] = [
                make_event(
                    payload,
                    producer=PRODUCER,
                    workspace_id=run.workspace_id,
                    aggregate_id=run.run_id,
                    aggregate_version=base + i,
                    correlation_id=run.correlation_id,
                    actor=run.actor,
                )
                for i, payload in enumerate(payloads, start=1)
            ]
            try:
                async with self.sessions() as session, session.begin():
                    if not await repo.lease_is_mine(session, run.run_id, self.owner):
                        raise RunLeaseLost(run.run_id)
                    await self.store.append(session, envelopes, expected_version=base)
                    if extra is not None:
                        await extra(session)
                    for envelope in envelopes:
                        run.apply(envelope)
                        await apply_run_side_effects(session, envelope, run)
                    await repo.project_run(session, run)
                    if finish:
                        await repo.finish_lease(session, run.run_id)
                return run
            except ConcurrencyConflict:
                run = await self.load(run.run_id)
            except BaseException:
                # The transaction rolled back: forget what was applied in memory.
                fresh = await self.load(run.run_id)
                run.__dict__.update(fresh.__dict__)
                raise
        raise RunLeaseLost(run.run_id)

    async def heartbeat(self, run_id: str) -> bool:
        async with self.sessions() as session, session.begin():
            return await repo.heartbeat_lease(session, run_id, self.owner, self.ttl_s)

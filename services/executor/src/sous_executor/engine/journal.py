"""A run's journal: the Execution as its stream says, and the one way the run appends to that stream.

Step outcomes go through `emit`, which records at most one outcome per step attempt whoever asks
(the step itself, a cancel or an abort). An append that conflicts (a cancel request was appended in
between) or hits a database blip reloads and tries again while the lease is provably still held.

A model call's usage is written with the run's next append rather than in a statement of its own: a final
answer's usage travels with the step's outcome. The agent loop flushes it before anything else can take
time or act outside (the next model call, a tool call), and the budget counts it while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from sous_events.envelope import Envelope, EventPayload
from sous_events.events.executor import StepUsageRecorded
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict
from sous_executor.adapters.execution_stream import PRODUCER, ExecutionStream
from sous_executor.adapters.leases import LeaseLost
from sous_executor.domain.execution import Execution
from sous_executor.domain.outcomes import records_outcome
from sous_executor.engine.fence import LeaseGuard, is_transient

logger = logging.getLogger("sous.executor.runner")
MAX_APPEND_TRIES = 50


class RunJournal:
    def __init__(
        self, stream: ExecutionStream, execution_id: str, guard: LeaseGuard, on_cancel_requested: Callable[[], None]
    ) -> None:
        self.stream = stream
        self.execution_id = execution_id
        self.guard = guard
        self.on_cancel_requested = on_cancel_requested
        self.execution = Execution()
        self.traceparent = ""  # of the ExecutionRequested event: the run's spans continue that trace
        self._lock = asyncio.Lock()
        self._unwritten: list[StepUsageRecorded] = []

    def defer_usage(self, usage: StepUsageRecorded) -> None:
        """Write `usage` with the next append (`flush` forces one)."""
        self._unwritten.append(usage)

    def unwritten_usage(self) -> tuple[int, float]:
        """Tokens and cost of deferred usage the stream does not hold yet."""
        return sum(u.tokens.total for u in self._unwritten), sum(u.cost_usd for u in self._unwritten)

    async def flush(self) -> None:
        if self._unwritten:
            await self.emit([])

    async def reload(self) -> None:
        self.replay(await self.stream.load(self.execution_id))

    def replay(self, events: list[Envelope]) -> None:
        """Fold the execution from its stream's events (loaded, or just appended by this instance)."""
        self.execution = Execution.from_events(events)
        self.traceparent = events[0].traceparent if events else ""

    async def emit(self, payloads: Sequence[EventPayload], *, finish: bool = False) -> None:
        # Shielded: a cancelled step task must not leave a committed append unapplied in memory.
        await asyncio.shield(self._emit(payloads, finish))

    async def _emit(self, payloads: Sequence[EventPayload], finish: bool) -> None:
        async with self._lock:
            stale = False
            backoff = 0.05
            for _ in range(MAX_APPEND_TRIES):
                self.guard.check()
                try:
                    if stale:
                        await self.reload()
                        stale = False
                    await self._append([p for p in payloads if records_outcome(self.execution, p)], finish)
                    return
                except ConcurrencyConflict:
                    # Someone else appended (a cancel request); the lease check guarantees it was not a runner.
                    stale = True
                except LeaseLost:
                    self.guard.lost.set()
                    raise
                except Exception as error:
                    stale = True
                    if not is_transient(error):
                        with contextlib.suppress(Exception):
                            await self.reload()
                            if payloads and self._unwritten:
                                # Events refused with it must not take the usage down: it goes on record alone.
                                await self._append([], finish=False)
                        raise
                    # A database blip: retry while the lease is still provably ours.
                    logger.info("execution %s: append failed (%s); retrying", self.execution_id, error)
                    await asyncio.sleep(min(backoff, max(0.0, self.guard.remaining())))
                    backoff = min(backoff * 2, 1.0)
            raise LeaseLost(self.execution_id)

    async def _append(self, outcomes: Sequence[EventPayload], finish: bool) -> None:
        carried = self._unwritten
        payloads = [*carried, *outcomes]
        if not payloads:
            return
        # Taken out before the append folds them into the execution, so the budget never counts them twice;
        # put back when the append fails (the next one writes them).
        self._unwritten = []
        try:
            await self._append_now(payloads, finish)
        except BaseException:
            self._unwritten = carried + self._unwritten
            raise

    async def _append_now(self, payloads: Sequence[EventPayload], finish: bool) -> None:
        execution = self.execution
        envelopes = [
            make_event(
                payload,
                producer=PRODUCER,
                workspace_id=execution.workspace_id,
                aggregate_id=self.execution_id,
                aggregate_version=execution.version + i,
                correlation_id=execution.correlation_id,
                actor=execution.actor or None,
            )
            for i, payload in enumerate(payloads, start=1)
        ]
        sent = time.monotonic()
        await self.stream.append(execution, envelopes, finish=finish)
        self.guard.renewed(sent)
        if execution.cancel_requested:
            self.on_cancel_requested()

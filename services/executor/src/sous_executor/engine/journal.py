"""A run's journal: the Execution as its stream says, and the one way the run appends to that stream.

Step outcomes go through `emit`, which records at most one outcome per step attempt whoever asks
(the step itself, a cancel or an abort). An append that conflicts (a cancel request was appended in
between) or hits a database blip reloads and tries again while the lease is provably still held.

A model call's usage is written with the run's next append rather than in a statement of its own. The agent
loop flushes it before anything else can take time or act outside (the next model call, a tool call), and the
budget counts it while it waits. A final answer's usage that reaches the append together with its attempt's
outcome is not written at all: the outcome carries the attempt's whole usage and would supersede it at once
(an estimated charge, for a cut call, is always written: its flag is the record of the estimate).

A step's outcome is staged the same way: folded into the Execution at once (the next step's prompt and the
run's totals see it) and written by the run's next append, so a step boundary (this step's outcome, the
next step's StepStarted) and the run's end (the last outcome, ExecutionFinished) are one statement each. The
run flushes staged events before it waits on anything but an append (engine/runner.py), and the agent loop
before every model or tool call: nothing acts outside while an outcome is unwritten. A runner that dies
with an outcome staged has recorded nothing of it; the next runner re-runs that attempt, as it would after a
crash just before the append.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from sous_events.envelope import Envelope, EventPayload
from sous_events.events.executor import StepCompleted, StepFailed, StepUsageRecorded
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, encoded_size, outbox_row
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
        # Folded into `execution` but not written yet (payloads, and the envelopes they were folded as).
        self._staged: list[EventPayload] = []
        self._staged_envelopes: list[Envelope] = []
        # Usage left out of the staged events because a staged outcome supersedes it; kept until they are
        # written, so that an outcome the database refuses does not take its usage down with it.
        self._superseded: list[StepUsageRecorded] = []

    def defer_usage(self, usage: StepUsageRecorded) -> None:
        """Write `usage` with the next append (`flush` forces one)."""
        self._unwritten.append(usage)

    def unwritten_usage(self) -> tuple[int, float]:
        """Tokens and cost of deferred usage the stream does not hold yet."""
        return sum(u.tokens.total for u in self._unwritten), sum(u.cost_usd for u in self._unwritten)

    @property
    def pending(self) -> bool:
        """Whether deferred usage or staged events wait for an append."""
        return bool(self._unwritten or self._staged)

    async def flush(self) -> None:
        if self.pending:
            await self.emit([])

    async def stage(self, payloads: Sequence[EventPayload]) -> None:
        """Fold `payloads` (after the deferred usage) into the execution now; the next append writes them."""
        await asyncio.shield(self._stage_locked(payloads))

    async def _stage_locked(self, payloads: Sequence[EventPayload]) -> None:
        async with self._lock:
            carried, self._unwritten = self._unwritten, []
            self._fold([*carried, *payloads])

    def _fold(self, payloads: Sequence[EventPayload]) -> None:
        payloads, superseded = without_superseded_usage(self.execution, payloads)
        self._superseded.extend(superseded)
        for payload in payloads:
            if records_outcome(self.execution, payload):
                envelope = self._envelope(payload, self.execution.version + 1)
                self.execution.apply(envelope, payload)
                self._staged.append(payload)
                self._staged_envelopes.append(envelope)

    async def reload(self) -> None:
        """Fold the stream as stored, then the staged events again on top of it."""
        events = await self.stream.load(self.execution_id)
        staged = self._staged
        self._staged, self._staged_envelopes = [], []
        self.replay(events)
        self._fold(staged)

    def adopt(self, execution: Execution, traceparent: str) -> None:
        """Start from `execution` as folded by whoever wrote its stream so far (a run claimed on request)."""
        self.execution = execution
        self.traceparent = traceparent

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
                        # Staged outcomes may be what was refused: they go, their usage stays.
                        refused = [*payloads, *self._staged]
                        usage = [p for p in self._staged if isinstance(p, StepUsageRecorded)] + self._superseded
                        self._staged, self._staged_envelopes, self._superseded = [], [], []
                        self._unwritten = usage + self._unwritten
                        with contextlib.suppress(Exception):
                            await self.reload()
                            if refused and self._unwritten:
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
        if not payloads and not self._staged:
            return
        # Taken out before the append folds them into the execution, so the budget never counts them twice;
        # put back when the append fails (the next one writes them).
        self._unwritten = []
        try:
            await self._append_now(payloads, finish)
        except BaseException:
            self._unwritten = carried + self._unwritten
            raise

    def fits(self, payload: EventPayload) -> bool:
        """Whether `payload`, as the run's next event, is within the size the event store takes."""
        envelope = self._envelope(payload, self.execution.version + 1)
        return encoded_size(outbox_row(envelope)) <= self.stream.store.max_event_bytes

    def _envelope(self, payload: EventPayload, version: int) -> Envelope:
        execution = self.execution
        return make_event(
            payload,
            producer=PRODUCER,
            workspace_id=execution.workspace_id,
            aggregate_id=self.execution_id,
            aggregate_version=version,
            correlation_id=execution.correlation_id,
            actor=execution.actor or None,
        )

    async def _append_now(self, payloads: Sequence[EventPayload], finish: bool) -> None:
        execution = self.execution
        envelopes = list(self._staged_envelopes)
        payloads, _ = without_superseded_usage(execution, payloads)
        for payload in payloads:
            # Folded here, from the typed payload (not read back from the envelope); on a failed append the
            # execution is stale and the caller reloads it.
            envelope = self._envelope(payload, execution.version + 1)
            execution.apply(envelope, payload)
            envelopes.append(envelope)
        sent = time.monotonic()
        await self.stream.append(execution, envelopes, finish=finish, folded=len(envelopes))
        self._staged, self._staged_envelopes, self._superseded = [], [], []
        self.guard.renewed(sent)
        if execution.cancel_requested:
            self.on_cancel_requested()


def without_superseded_usage(
    execution: Execution, payloads: Sequence[EventPayload]
) -> tuple[list[EventPayload], list[StepUsageRecorded]]:
    """`payloads` without the usage an outcome later in them supersedes, and that usage.

    Only an outcome the execution records (the attempt's first) supersedes, and never an estimated charge.
    """
    outcomes = {
        (p.step_id, p.attempt)
        for p in payloads
        if isinstance(p, StepCompleted | StepFailed) and records_outcome(execution, p)
    }
    kept: list[EventPayload] = []
    superseded: list[StepUsageRecorded] = []
    for payload in payloads:
        if (
            isinstance(payload, StepUsageRecorded)
            and not payload.estimated
            and (payload.step_id, payload.attempt) in outcomes
        ):
            superseded.append(payload)
        else:
            kept.append(payload)
    return kept, superseded

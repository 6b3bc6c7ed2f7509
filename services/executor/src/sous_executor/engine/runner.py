"""Runs one execution: plans its steps, starts them as they become ready, ends the run once.

A run can start on any instance that holds the execution's lease. It rebuilds the Execution from its
stream (engine/journal.py), so a run resumed after a crash keeps completed steps and re-runs an
interrupted step as a new attempt. A run its accepting instance has just claimed starts from the Execution
its request folded (ExecutionRequested, ExecutionStarted and the StepStarted of the steps the request
opened: the whole stream at that moment), without reading or decoding it again, and runs those attempts
without recording them twice; an append that finds the stream moved on (a cancel request) reloads it.
Every append checks the lease in the same transaction, and every model or tool call first checks the lease
guard (engine/fence.py): a runner that may have lost the lease neither writes nor acts. What a step's
failure means and how a run's end is recorded are domain rules (domain/retry_policy.py,
domain/budget_policy.py, domain/outcomes.py); this is the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sous_events.envelope import EventPayload
from sous_events.events.executor import ExecutionStarted
from sous_executor.adapters.leases import LeaseLost
from sous_executor.domain.budget_policy import Limits
from sous_executor.domain.execution import Execution, StepState
from sous_executor.domain.outcomes import (
    RunEnding,
    StepOutcome,
    bare_finish,
    closing_events,
    finished_event,
    kept_without_output,
    resume_state,
    reused_completions,
)
from sous_executor.domain.planning import Plan, PlanError, StepSpec, build_plan, parse_steps, step_timeout
from sous_executor.domain.prompts import step_prompt
from sous_executor.engine.attempt import InFlight
from sous_executor.engine.budget_gate import BudgetGate
from sous_executor.engine.fence import LeaseGuard
from sous_executor.engine.journal import RunJournal
from sous_executor.engine.step_loop import run_step
from sous_executor.observability import run_span, traced_step

logger = logging.getLogger("sous.executor.runner")

if TYPE_CHECKING:
    from sous_executor.engine.step_engine import StepEngine

StepTasks = dict["asyncio.Task[StepOutcome]", str]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Claimed:
    """A run this instance claimed in the transaction that requested it.

    `execution` is that transaction's events folded (the whole stream at its commit), `traceparent` the
    request's; `sent` is a monotonic time taken before the lease was written, which lasts the lease ttl from
    then at least.
    """

    execution: Execution
    traceparent: str
    sent: float


class Run:
    def __init__(self, engine: StepEngine, execution_id: str, *, claimed: Claimed | None = None) -> None:
        self.engine = engine
        self.claimed = claimed
        self.settings = s = engine.settings
        self.execution_id = execution_id
        self.cancel_event = asyncio.Event()
        self.guard = LeaseGuard(engine.leases, execution_id, s.lease_ttl_s, s.heartbeat_interval_s, s.cancel_poll_s)
        self.journal = RunJournal(engine.stream, execution_id, self.guard, self.cancel_event.set)
        self.budget = BudgetGate(Limits(), self._spent)
        self.inflight: dict[str, InFlight] = {}
        self.model_ms: dict[str, float] = {}
        self.plan: Plan | None = None
        # Step attempts whose StepStarted the request's transaction wrote (domain/step_start.py): run, not
        # recorded again.
        self._opened: set[tuple[str, int]] = set()

    @property
    def agg(self) -> Execution:
        return self.journal.execution

    @property
    def lost_event(self) -> asyncio.Event:
        return self.guard.lost

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.agg.recipe.get("execution_config") or {})

    async def emit(self, payloads: Sequence[EventPayload], *, finish: bool = False) -> None:
        await self.journal.emit(payloads, finish=finish)

    # ------------------------------------------------------------ fences
    def checkpoint(self) -> None:
        """Before any side effect: the lease must be ours and no cancel pending."""
        self.guard.check()
        if self.cancel_event.is_set():
            raise asyncio.CancelledError

    async def pause(self, seconds: float) -> None:
        """Sleep (a retry's delay) but wake for a cancel or a lost lease."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._interrupted(), seconds)
        self.checkpoint()

    async def _interrupted(self) -> None:
        cancel = asyncio.ensure_future(self.cancel_event.wait())
        lost = asyncio.ensure_future(self.guard.lost.wait())
        try:
            await asyncio.wait([cancel, lost], return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancel.cancel()
            lost.cancel()

    def _spent(self) -> tuple[int, float]:
        tokens, cost = self.journal.unwritten_usage()
        return self.agg.total_tokens + tokens, self.agg.total_cost_usd + cost

    async def _poll_cancel(self) -> None:
        if not self.cancel_event.is_set() and await self.engine.stream.cancel_requested(self.execution_id):
            self.cancel_event.set()

    # ------------------------------------------------------------ the run
    async def execute(self) -> None:
        if self.claimed is None:
            await self.guard.beat()
            await self.journal.reload()
        else:
            self.guard.renewed(self.claimed.sent)
            self.journal.adopt(self.claimed.execution, self.claimed.traceparent)
        if not self.agg.execution_id or self.agg.finished:
            # Finished already, or requested in another database (nothing to run here): close the lease.
            await self.engine.stream.close(self.execution_id)
            return
        if self.agg.cancel_requested:
            self.cancel_event.set()
        self.budget = BudgetGate(Limits.from_config(self.config), self._spent)
        monitor = asyncio.create_task(self.guard.watch(self._poll_cancel), name=f"monitor-{self.execution_id}")
        try:
            with run_span(self.execution_id, self.journal.traceparent, self.agg.correlation_id):
                await self._drive()
        finally:
            monitor.cancel()
            with contextlib.suppress(BaseException):
                await monitor

    async def _drive(self) -> None:
        agg = self.agg
        try:
            specs = parse_steps(agg.recipe.get("steps") or [])
            self.plan = plan = build_plan(specs, self.config)
        except PlanError as exc:
            if agg.status == "pending":
                await self.emit([ExecutionStarted(execution_id=self.execution_id, template_id=agg.template_id)])
            await self._finish(RunEnding.invalid_recipe(str(exc)))
            return
        if agg.status == "pending":
            started = ExecutionStarted(
                execution_id=self.execution_id,
                template_id=agg.template_id,
                runner_id=self.settings.runner_id,
                total_steps=len(specs),
            )
            await self.emit([started])
        reused = reused_completions(self.agg, plan, await self._kept_steps())
        if reused:
            await self.emit(reused)
        state = resume_state(self.agg, plan)
        if self.claimed is not None:
            # Claimed with its request: a step already running was opened by that transaction, and this is
            # that attempt (a resumed run starts a running step's next attempt instead).
            for step_id in state.resume:
                attempt = self.agg.steps[step_id].attempt
                state.resume[step_id] = (attempt, None)
                self._opened.add((step_id, attempt))
        if state.stop_failure is not None:
            await self._finish(RunEnding.stopped_by(self.agg, state.stop_failure, interrupting=False))
            return
        await self._loop(plan, state.finished, state.resume)

    async def _kept_steps(self) -> dict[str, StepState]:
        """The original run's steps, when this rerun's request names the steps it keeps without their outputs."""
        agg = self.agg
        if not agg.rerun_of or not kept_without_output(agg):
            return {}
        return Execution.from_events(await self.journal.stream.load(agg.rerun_of)).steps

    def _deadline(self) -> tuple[float, float]:
        """The recipe's total_timeout (0: none) and the monotonic time it runs out, counted from the start."""
        total_timeout = float(self.config.get("total_timeout") or 0)
        if total_timeout <= 0:
            return 0.0, time.monotonic() + 10**9
        started_at = self.agg.started_at or utcnow()
        return total_timeout, time.monotonic() + total_timeout - (utcnow() - started_at).total_seconds()

    async def _loop(
        self, plan: Plan, finished: set[str], pending_resume: dict[str, tuple[int, datetime | None]]
    ) -> None:
        """Start ready steps, wait for one to end, until none is left or the run must end early."""
        total_timeout, deadline = self._deadline()
        tasks: StepTasks = {}
        cancel_wait = asyncio.create_task(self.cancel_event.wait())
        lost_wait = asyncio.create_task(self.lost_event.wait())
        try:
            while True:
                if self.lost_event.is_set():
                    raise LeaseLost(self.execution_id)
                if self.cancel_event.is_set():
                    await self._abort(tasks, RunEnding.cancelled(), graceful=True)
                    return
                running = set(tasks.values())
                appending = False  # a step started now appends (its StepStarted) before it waits on anything
                for sid in list(pending_resume):
                    if sid not in running:
                        attempt, retry_at = pending_resume.pop(sid)
                        tasks[self._start_step(plan.by_id[sid], attempt, retry_at)] = sid
                        appending = appending or retry_at is None
                running = set(tasks.values())
                for sid in plan.ready(finished, running):
                    tasks[self._start_step(plan.by_id[sid], 1, None)] = sid
                    appending = True
                if not tasks:
                    break
                if not appending:
                    # Outcomes staged by ended steps go on record before the run waits on the others.
                    await self.journal.flush()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    await self._abort(tasks, RunEnding.timed_out(total_timeout))
                    return
                done, _ = await asyncio.wait(
                    [*tasks, cancel_wait, lost_wait], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                ending = self._settle(tasks, done, finished)
                if ending is not None:
                    await self._abort(tasks, ending)
                    return
            await self._finish(RunEnding.completed())
        except (Exception, asyncio.CancelledError) as error:
            if not isinstance(error, LeaseLost):
                # A run that crashes or is stopped keeps the outcomes its steps reached: the next runner
                # resumes after them (the append is shielded from a second cancel).
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await self.journal.flush()
            raise
        finally:
            cancel_wait.cancel()
            lost_wait.cancel()
            for task in tasks:
                task.cancel()

    def _settle(self, tasks: StepTasks, done: Iterable[asyncio.Task[object]], finished: set[str]) -> RunEnding | None:
        """Take the ended step tasks out of `tasks`; the run's ending when one of them (or the budget) ends it."""
        for finished_task in [task for task in tasks if task in done]:
            sid = tasks.pop(finished_task)
            if finished_task.cancelled():
                continue
            outcome = finished_task.result()  # re-raises LeaseLost
            finished.add(sid)
            if outcome == StepOutcome.STOP:
                return RunEnding.stopped_by(self.agg, sid, interrupting=True)
            if outcome == StepOutcome.BUDGET:
                return RunEnding.over_budget(self.agg.steps[sid].error or "budget exceeded")
        over = self.budget.over()
        return RunEnding.over_budget(over) if over else None

    # ------------------------------------------------------------ steps
    def opened_with_request(self, step_id: str, attempt: int) -> bool:
        """Whether this attempt's StepStarted is on record already, written with the run's request (once)."""
        if (step_id, attempt) not in self._opened:
            return False
        self._opened.discard((step_id, attempt))
        return True

    def _start_step(self, spec: StepSpec, attempt: int, retry_at: datetime | None) -> asyncio.Task[StepOutcome]:
        running = run_step(self, spec, attempt, retry_at)
        return asyncio.create_task(traced_step(spec.step_id, attempt, running), name=f"step-{spec.step_id}")

    def prompt(self, spec: StepSpec) -> tuple[str, tuple[str, ...]]:
        assert self.plan is not None
        rendered = step_prompt(self.agg, self.plan, spec)
        return rendered.text, rendered.unknown

    def step_timeout(self, spec: StepSpec) -> float | None:
        return step_timeout(spec, self.config)

    # ------------------------------------------------------------ ending
    async def _abort(self, tasks: StepTasks, ending: RunEnding, *, graceful: bool = False) -> None:
        if graceful and tasks:
            # A cancel lets in-flight model calls answer (their usage is recorded) up to a grace period;
            # the steps stop at their next checkpoint.
            lost_wait = asyncio.create_task(self.lost_event.wait())
            until = time.monotonic() + self.settings.cancel_grace_s
            try:
                pending: set[asyncio.Future[Any]] = set(tasks)
                while pending and not self.lost_event.is_set() and time.monotonic() < until:
                    _, pending = await asyncio.wait(
                        [*pending, lost_wait], timeout=until - time.monotonic(), return_when=asyncio.FIRST_COMPLETED
                    )
                    pending.discard(lost_wait)
            finally:
                lost_wait.cancel()
        for task in tasks:
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(BaseException):
                await task
        tasks.clear()
        if self.lost_event.is_set():
            raise LeaseLost(self.execution_id)
        await self._finish(ending)

    async def _finish(self, ending: RunEnding) -> None:
        interrupted = {sid: rec.so_far() for sid, rec in self.inflight.items()}
        self.inflight.clear()
        # The closing events and the finish are one append, with the outcomes still staged.
        await self.journal.stage(closing_events(self.agg, interrupted, ending))
        finished = finished_event(self.agg, ending, self.model_ms, utcnow())
        if not self.journal.fits(finished):
            # The store would refuse it, and a run that can never end is resumed forever: the bare finish (no
            # summary; every step's own events hold its result) goes instead.
            logger.warning("execution %s: its finish is too large to store; recording a bare one", self.execution_id)
            finished = bare_finish(finished)
        await self.emit([finished], finish=True)

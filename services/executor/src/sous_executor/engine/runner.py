"""Runs one execution: plans its steps, runs them, appends every event as it goes.

A run can start on any instance that holds the execution's lease. It rebuilds the Execution from its
stream, so a run resumed after a crash keeps completed steps and re-runs an interrupted step as a new
attempt. Every append checks the lease in the same transaction, and every model or tool call first
checks the lease guard (engine/fence.py): a runner that may have lost the lease neither writes nor acts.
Step outcomes go through `emit`, which records at most one outcome per step attempt whoever asks
(the step itself, a cancel or an abort).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import EventPayload
from sous_events.events.executor import (
    ExecutionFinished,
    ExecutionStarted,
    ExecutionTotals,
    StepCompleted,
    StepFailed,
    StepSkipped,
    TokenUsage,
    ToolCallRecord,
)
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, EventStore
from sous_executor.adapters.repositories import project_execution
from sous_executor.adapters.tables import executions
from sous_executor.config import ExecutorSettings
from sous_executor.domain.budget import Limits, exceeded
from sous_executor.domain.execution import Execution, StepState
from sous_executor.domain.outputs import summary_output_data, summary_result
from sous_executor.domain.planning import Plan, PlanError, StepSpec, build_plan, parse_steps
from sous_executor.domain.policy import accepts_outcome
from sous_executor.domain.prompts import PromptContext, render
from sous_executor.engine.attempt import InFlight
from sous_executor.engine.budget_gate import BudgetGate
from sous_executor.engine.capacity import Capacity
from sous_executor.engine.fence import LeaseGuard, is_transient
from sous_executor.engine.leases import LeaseLost, Leases
from sous_executor.engine.step_loop import run_step
from sous_executor.llm.client import ClientFactory
from sous_executor.observability import run_span, traced_step
from sous_executor.tools.router import ToolRouter

logger = logging.getLogger("sous.executor.runner")
PRODUCER = "executor"
AGGREGATE = "Execution"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    """Everything runs share: sessions, store, leases, model clients, tools; and the local runs."""

    def __init__(
        self,
        *,
        settings: ExecutorSettings,
        sessions: async_sessionmaker[AsyncSession],
        store: EventStore,
        router: ToolRouter,
        clients: ClientFactory,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.router = router
        self.clients = clients
        self.leases = Leases(sessions, settings.runner_id, settings.lease_ttl_s)
        self.capacity = Capacity(settings.max_inflight)
        self.runs: dict[str, Run] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def spawn(self, execution_id: str) -> bool:
        """Start running an execution whose lease this instance holds (no-op if already running here)."""
        if execution_id in self._tasks:
            return False
        if self._stopping:
            self.capacity.release(execution_id)
            return False
        self.capacity.occupy(execution_id)
        run = Run(self, execution_id)
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


class Run:
    def __init__(self, engine: Engine, execution_id: str) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.execution_id = execution_id
        self.agg = Execution()
        self.lock = asyncio.Lock()
        self.cancel_event = asyncio.Event()
        s = self.settings
        self.guard = LeaseGuard(engine.leases, execution_id, s.lease_ttl_s, s.heartbeat_interval_s, s.cancel_poll_s)
        self.budget = BudgetGate(Limits(), self._spent)
        self.inflight: dict[str, InFlight] = {}
        self.model_ms: dict[str, float] = {}
        self.plan: Plan | None = None
        self.traceparent = ""  # of the ExecutionRequested event: the run's spans continue that trace

    @property
    def lost_event(self) -> asyncio.Event:
        return self.guard.lost

    # ------------------------------------------------------------ persistence
    async def _reload(self) -> None:
        async with self.engine.sessions() as session:
            events = await self.engine.store.load(session, AGGREGATE, self.execution_id)
        self.agg = Execution.from_events(events)
        self.traceparent = events[0].traceparent if events else ""

    async def emit(self, payloads: Sequence[EventPayload], *, finish: bool = False) -> None:
        # Shielded: a cancelled step task must not leave a committed append unapplied in memory.
        await asyncio.shield(self._emit(payloads, finish))

    def _accepts(self, payload: EventPayload) -> bool:
        if not isinstance(payload, StepCompleted | StepFailed):
            return True
        step = self.agg.steps.get(payload.step_id)
        return step is None or accepts_outcome(step.status, step.attempt, payload.attempt)

    async def _emit(self, payloads: Sequence[EventPayload], finish: bool) -> None:
        async with self.lock:
            stale = False
            backoff = 0.05
            for _ in range(50):
                self.guard.check()
                try:
                    if stale:
                        await self._reload()
                        stale = False
                    await self._append([p for p in payloads if self._accepts(p)], finish)
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
                            await self._reload()
                        raise
                    # A database blip: retry while the lease is still provably ours.
                    logger.info("execution %s: append failed (%s); retrying", self.execution_id, error)
                    await asyncio.sleep(min(backoff, max(0.0, self.guard.remaining())))
                    backoff = min(backoff * 2, 1.0)
            raise LeaseLost(self.execution_id)

    async def _append(self, payloads: Sequence[EventPayload], finish: bool) -> None:
        if not payloads:
            return
        base = self.agg.version
        envelopes = [
            make_event(
                payload,
                producer=PRODUCER,
                workspace_id=self.agg.workspace_id,
                aggregate_id=self.execution_id,
                aggregate_version=base + i,
                correlation_id=self.agg.correlation_id,
                actor=self.agg.actor or None,
            )
            for i, payload in enumerate(payloads, start=1)
        ]
        sent = time.monotonic()
        async with self.engine.sessions() as session, session.begin():
            await self.engine.leases.assert_owner(session, self.execution_id, renew=not finish)
            await self.engine.store.append(session, envelopes, expected_version=base)
            for envelope in envelopes:
                self.agg.apply(envelope)
            await project_execution(session, self.agg)
            if finish:
                await self.engine.leases.mark_finished(session, self.execution_id)
        self.guard.renewed(sent)
        if self.agg.cancel_requested:
            self.cancel_event.set()

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
        return self.agg.total_tokens, self.agg.total_cost_usd

    def over_budget(self) -> str | None:
        return exceeded(self.budget.ledger.limits, *self._spent())

    async def _poll_cancel(self) -> None:
        if self.cancel_event.is_set():
            return
        async with self.engine.sessions() as session:
            flag = (
                await session.execute(
                    select(executions.c.cancel_requested).where(executions.c.execution_id == self.execution_id)
                )
            ).scalar_one_or_none()
        if flag:
            self.cancel_event.set()

    # ------------------------------------------------------------ the run
    async def execute(self) -> None:
        await self.guard.beat()
        await self._reload()
        if not self.agg.execution_id or self.agg.finished:
            # Finished already, or requested in another database (nothing to run here): close the lease.
            async with self.engine.sessions() as session, session.begin():
                await self.engine.leases.mark_finished(session, self.execution_id)
            return
        if self.agg.cancel_requested:
            self.cancel_event.set()
        config = self.config
        self.budget = BudgetGate(
            Limits(
                max_tokens=int(config["max_tokens"]) if config.get("max_tokens") is not None else None,
                max_cost_usd=float(config["max_cost_usd"]) if config.get("max_cost_usd") is not None else None,
            ),
            self._spent,
        )
        monitor = asyncio.create_task(self.guard.watch(self._poll_cancel), name=f"monitor-{self.execution_id}")
        try:
            with run_span(self.execution_id, self.traceparent, self.agg.correlation_id):
                await self._drive()
        finally:
            monitor.cancel()
            with contextlib.suppress(BaseException):
                await monitor

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.agg.recipe.get("execution_config") or {})

    async def _drive(self) -> None:
        agg = self.agg
        try:
            specs = parse_steps(agg.recipe.get("steps") or [])
            self.plan = plan = build_plan(specs, self.config)
        except PlanError as exc:
            if agg.status == "pending":
                await self.emit([ExecutionStarted(execution_id=self.execution_id, recipe_id=agg.recipe_id)])
            await self._finish("failed", f"invalid recipe: {exc}", "", "error")
            return
        if agg.status == "pending":
            await self.emit(
                [
                    ExecutionStarted(
                        execution_id=self.execution_id,
                        recipe_id=agg.recipe_id,
                        runner_id=self.settings.runner_id,
                        total_steps=len(specs),
                    )
                ]
            )
        await self._apply_reused(plan)
        total_timeout = float(self.config.get("total_timeout") or 0)
        started_at = self.agg.started_at or utcnow()
        deadline = time.monotonic() + (
            total_timeout - (utcnow() - started_at).total_seconds() if total_timeout > 0 else 10**9
        )
        finished: set[str] = set()
        stop_failure: str | None = None
        pending_resume: dict[str, tuple[int, datetime | None]] = {}
        for step in self.agg.steps.values():
            if step.status in ("completed", "skipped", "cancelled"):
                finished.add(step.step_id)
            elif step.status == "failed":
                finished.add(step.step_id)
                spec = plan.by_id.get(step.step_id)
                if spec is not None and spec.error_handling != "continue":
                    stop_failure = step.step_id
            elif step.status == "running":
                pending_resume[step.step_id] = self._resume_point(step)
        if stop_failure is not None:
            await self._finish("failed", self._stop_message(stop_failure), "", "cancelled")
            return
        tasks: dict[asyncio.Task[str], str] = {}
        cancel_wait = asyncio.create_task(self.cancel_event.wait())
        lost_wait = asyncio.create_task(self.lost_event.wait())
        try:
            while True:
                if self.lost_event.is_set():
                    raise LeaseLost(self.execution_id)
                if self.cancel_event.is_set():
                    await self._abort(tasks, "cancelled", "cancelled by request", "cancelled", graceful=True)
                    return
                running = set(tasks.values())
                for sid in list(pending_resume):
                    if sid not in running:
                        attempt, retry_at = pending_resume.pop(sid)
                        tasks[self._start_step(plan.by_id[sid], attempt, retry_at)] = sid
                running = set(tasks.values())
                for sid in plan.ready(finished, running):
                    tasks[self._start_step(plan.by_id[sid], 1, None)] = sid
                if not tasks:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    await self._abort(tasks, "failed", f"total_timeout of {total_timeout:g}s exceeded", "timeout")
                    return
                done, _ = await asyncio.wait(
                    [*tasks, cancel_wait, lost_wait], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                for finished_task in done:
                    sid_done = tasks.pop(finished_task, None)  # type: ignore[arg-type]
                    if sid_done is None or finished_task.cancelled():
                        continue
                    outcome = finished_task.result()  # re-raises LeaseLost
                    finished.add(sid_done)
                    if outcome == "stop":
                        await self._abort(tasks, "failed", self._stop_message(sid_done), "cancelled")
                        return
                    if outcome == "budget":
                        await self._abort(
                            tasks, "failed", self.agg.steps[sid_done].error or "budget exceeded", "budget"
                        )
                        return
                over = self.over_budget()
                if over:
                    await self._abort(tasks, "failed", over, "budget")
                    return
            await self._finish("completed", None, "", "")
        finally:
            cancel_wait.cancel()
            lost_wait.cancel()
            for task in tasks:
                task.cancel()

    def _stop_message(self, step_id: str) -> str:
        step = self.agg.steps.get(step_id)
        return f"step {step_id} failed: {step.error if step else 'error'}"

    def _resume_point(self, step: StepState) -> tuple[int, datetime | None]:
        if step.next_attempt is not None and not step.in_flight:
            return step.next_attempt, step.retry_at
        return step.attempt + 1, None

    async def _apply_reused(self, plan: Plan) -> None:
        events: list[EventPayload] = []
        for raw in self.agg.reused_results:
            sid = str(raw.get("step_id"))
            step = self.agg.steps.get(sid)
            if step is None or step.status == "completed" or sid not in plan.by_id:
                continue
            events.append(
                StepCompleted(
                    execution_id=self.execution_id,
                    step_id=sid,
                    order=step.order,
                    attempt=int(raw.get("attempt") or 1),
                    agent_id=step.agent_id,
                    agent_name=step.agent_name,
                    output=str(raw.get("output") or ""),
                    tool_calls=[ToolCallRecord.model_validate(t) for t in raw.get("tool_calls") or []],
                    duration_ms=0.0,
                    tokens=TokenUsage(),
                    cost_usd=0.0,
                    reused=True,
                )
            )
        if events:
            await self.emit(events)

    # ------------------------------------------------------------ steps
    def _start_step(self, spec: StepSpec, attempt: int, retry_at: datetime | None) -> asyncio.Task[str]:
        running = run_step(self, spec, attempt, retry_at)
        return asyncio.create_task(traced_step(spec.step_id, attempt, running), name=f"step-{spec.step_id}")

    def prompt(self, spec: StepSpec) -> tuple[str, tuple[str, ...]]:
        agg = self.agg
        override = (agg.step_overrides.get(spec.step_id) or {}).get("prompt_template")
        template = str(override) if override else spec.prompt_template
        plan = self.plan
        assert plan is not None
        outputs = {sid: s.output for sid, s in agg.steps.items()}
        rendered = render(
            template,
            PromptContext(
                inputs=agg.input_data,
                step_outputs=outputs,
                order=tuple(s.step_id for s in plan.steps),
                output_keys={s.output_key: s.step_id for s in plan.steps if s.output_key},
                current_step=spec.step_id,
            ),
        )
        return rendered.text, rendered.unknown

    def step_timeout(self, spec: StepSpec) -> float | None:
        value = spec.timeout if spec.timeout is not None else self.config.get("timeout_per_step")
        return float(value) if value else None

    # ------------------------------------------------------------ ending
    async def _abort(
        self,
        tasks: dict[asyncio.Task[str], str],
        status: str,
        error: str,
        inflight_type: str,
        *,
        graceful: bool = False,
    ) -> None:
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
        await self._finish(status, error, error, inflight_type)

    async def _finish(self, status: str, error: str | None, inflight_error: str, inflight_type: str) -> None:
        events: list[EventPayload] = []
        for sid, rec in sorted(self.inflight.items()):
            step = self.agg.steps[sid]
            events.append(
                StepFailed(
                    execution_id=self.execution_id,
                    step_id=sid,
                    order=step.order,
                    attempt=rec.attempt if rec.started else max(step.attempt, 1),
                    agent_id=step.agent_id,
                    agent_name=step.agent_name,
                    error=inflight_error or "interrupted",
                    error_type=inflight_type or "cancelled",
                    will_retry=False,
                    tool_calls=rec.records() if rec.started else [],
                    duration_ms=rec.duration_ms() if rec.started else 0.0,
                    tokens=rec.tokens() if rec.started else TokenUsage(),
                    cost_usd=round(rec.cost, 8) if rec.started else 0.0,
                )
            )
        handled = set(self.inflight)
        self.inflight.clear()
        for step in self.agg.ordered_steps():
            if step.status == "running" and step.step_id not in handled:
                # Started by an earlier runner of this execution and never resumed here (the run ended first).
                events.append(self._interrupted_outcome(step, inflight_error, inflight_type))
        reason = {"cancelled": "run cancelled before this step started"}.get(
            status, f"run ended before this step started: {error}" if error else "not run"
        )
        for step in self.agg.ordered_steps():
            if step.status == "pending":
                events.append(StepSkipped(execution_id=self.execution_id, step_id=step.step_id, reason=reason))
        if events:
            await self.emit(events)
        await self.emit([self._finished_event(status, error)], finish=True)

    def _interrupted_outcome(self, step: StepState, error: str, error_type: str) -> StepFailed:
        prompt, completion, cost = step.pending_usage.get(step.attempt, (0, 0, 0.0))
        return StepFailed(
            execution_id=self.execution_id,
            step_id=step.step_id,
            order=step.order,
            attempt=max(step.attempt, 1),
            agent_id=step.agent_id,
            agent_name=step.agent_name,
            error=error or "interrupted",
            error_type=error_type or "cancelled",
            tokens=TokenUsage(prompt=prompt, completion=completion, total=prompt + completion),
            cost_usd=round(cost, 8),
        )

    def _finished_event(self, status: str, error: str | None) -> ExecutionFinished:
        agg = self.agg
        results = []
        for result in agg.step_results():
            if result["step_id"] in self.model_ms:
                result["model_ms"] = round(self.model_ms[result["step_id"]], 3)
            results.append(summary_result(result))
        full, refs = agg.full_output_data() if status == "completed" else ({}, {})
        now = utcnow()
        duration = (now - agg.started_at).total_seconds() * 1000 if agg.started_at else 0.0
        return ExecutionFinished(
            execution_id=self.execution_id,
            recipe_id=agg.recipe_id,
            status=status,
            output_data=summary_output_data(full),
            error=error,
            totals=ExecutionTotals(
                duration_ms=round(duration, 3),
                tokens=agg.total_tokens,
                cost_usd=round(agg.total_cost_usd, 8),
                steps_completed=sum(1 for s in agg.steps.values() if s.status == "completed"),
                steps_failed=sum(1 for s in agg.steps.values() if s.status == "failed"),
                steps_total=len(agg.steps),
            ),
            step_results=results,
            summary=True,
            output_refs=refs,
        )

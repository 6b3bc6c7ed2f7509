"""Runs one execution: plans its steps, calls the agents, appends every event as it goes.

A run can start on any instance that holds the execution's lease. It rebuilds the Execution from its
stream, so a run resumed after a crash keeps completed steps and re-runs an interrupted step as a new
attempt. Every append checks the lease in the same transaction: a runner that lost it stops writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import EventPayload
from sous_events.events.executor import (
    ExecutionFinished,
    ExecutionStarted,
    ExecutionTotals,
    StepCompleted,
    StepFailed,
    StepRetryScheduled,
    StepSkipped,
    StepStarted,
    TokenUsage,
    ToolCallRecord,
)
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, EventStore
from sous_executor.adapters.repositories import project_execution
from sous_executor.adapters.tables import executions
from sous_executor.config import ExecutorSettings
from sous_executor.domain.execution import Execution, StepState
from sous_executor.domain.planning import Plan, PlanError, StepSpec, build_plan, parse_steps
from sous_executor.domain.prompts import PromptContext, render
from sous_executor.domain.retry import backoff_delay
from sous_executor.engine.leases import LeaseLost, Leases
from sous_executor.llm.client import ClientFactory, ModelConfigError
from sous_executor.llm.errors import upstream_message
from sous_executor.llm.pricing import cost_usd
from sous_executor.tools.router import ToolNotAllowed, ToolRouter

logger = logging.getLogger("sous.executor.runner")
PRODUCER = "executor"
AGGREGATE = "Execution"
MAX_PROMPT_IN_EVENT = 8000


def utcnow() -> datetime:
    return datetime.now(UTC)


class StepFailure(Exception):
    def __init__(self, message: str, error_type: str = "error") -> None:
        super().__init__(message)
        self.error_type = error_type


class BudgetExceeded(StepFailure):
    def __init__(self, message: str) -> None:
        super().__init__(message, "budget")


@dataclass
class InFlight:
    """What a step attempt has done so far (kept when the attempt is interrupted)."""

    attempt: int
    started: bool = False
    waiting_retry: bool = False
    t0: float = field(default_factory=time.perf_counter)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    model_ms: float = 0.0

    def tokens(self) -> TokenUsage:
        return TokenUsage(
            prompt=self.prompt_tokens,
            completion=self.completion_tokens,
            total=self.prompt_tokens + self.completion_tokens,
        )

    def records(self) -> list[ToolCallRecord]:
        return [ToolCallRecord.model_validate(r) for r in self.tool_calls]

    def duration_ms(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000, 3)


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
        self.runs: dict[str, Run] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def spawn(self, execution_id: str) -> bool:
        """Start running an execution whose lease this instance holds (no-op if already running here)."""
        if self._stopping or execution_id in self._tasks:
            return False
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
        finally:
            self.runs.pop(run.execution_id, None)
            self._tasks.pop(run.execution_id, None)

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
        self.lost_event = asyncio.Event()
        self.inflight: dict[str, InFlight] = {}
        self.model_ms: dict[str, float] = {}
        self.plan: Plan | None = None

    # ------------------------------------------------------------ persistence
    async def _reload(self) -> None:
        async with self.engine.sessions() as session:
            events = await self.engine.store.load(session, AGGREGATE, self.execution_id)
        self.agg = Execution.from_events(events)

    async def emit(self, payloads: Sequence[EventPayload], *, finish: bool = False) -> None:
        # Shielded: a cancelled step task must not leave a committed append unapplied in memory.
        await asyncio.shield(self._emit(payloads, finish))

    async def _emit(self, payloads: Sequence[EventPayload], finish: bool) -> None:
        async with self.lock:
            for _ in range(10):
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
                try:
                    async with self.engine.sessions() as session, session.begin():
                        await self.engine.leases.assert_owner(session, self.execution_id)
                        await self.engine.store.append(session, envelopes, expected_version=base)
                        for envelope in envelopes:
                            self.agg.apply(envelope)
                        await project_execution(session, self.agg)
                        if finish:
                            await self.engine.leases.mark_finished(session, self.execution_id)
                    return
                except ConcurrencyConflict:
                    # Someone else appended (a cancel request); the lease check guarantees it was not a runner.
                    await self._reload()
                    if self.agg.cancel_requested:
                        self.cancel_event.set()
                except BaseException:
                    await self._reload()
                    raise
            raise LeaseLost(self.execution_id)

    # ------------------------------------------------------------ monitor
    async def _monitor(self) -> None:
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(min(self.settings.cancel_poll_s, self.settings.heartbeat_interval_s))
            if time.monotonic() - last_beat >= self.settings.heartbeat_interval_s:
                if not await self.engine.leases.heartbeat(self.execution_id):
                    self.lost_event.set()
                    return
                last_beat = time.monotonic()
            if not self.cancel_event.is_set():
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
        await self._reload()
        if not self.agg.execution_id or self.agg.finished:
            # Finished already, or requested in another database (nothing to run here): close the lease.
            async with self.engine.sessions() as session, session.begin():
                await self.engine.leases.mark_finished(session, self.execution_id)
            return
        if self.agg.cancel_requested:
            self.cancel_event.set()
        monitor = asyncio.create_task(self._monitor(), name=f"monitor-{self.execution_id}")
        try:
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
                    await self._abort(tasks, "cancelled", "cancelled by request", "cancelled")
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
                over = self._over_budget()
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

    def _over_budget(self) -> str | None:
        max_tokens = self.config.get("max_tokens")
        max_cost = self.config.get("max_cost_usd")
        if max_tokens is not None and self.agg.total_tokens > int(max_tokens):
            return f"token budget exceeded: {self.agg.total_tokens} > max_tokens {int(max_tokens)}"
        if max_cost is not None and self.agg.total_cost_usd > float(max_cost):
            return f"cost budget exceeded: {self.agg.total_cost_usd:.6f} > max_cost_usd {float(max_cost)}"
        return None

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

    # ------------------------------------------------------------ ending
    async def _abort(self, tasks: dict[asyncio.Task[str], str], status: str, error: str, inflight_type: str) -> None:
        for task in tasks:
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(BaseException):
                await task
        tasks.clear()
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
                    cost_usd=rec.cost if rec.started else 0.0,
                )
            )
        self.inflight.clear()
        reason = {"cancelled": "run cancelled before this step started"}.get(
            status, f"run ended before this step started: {error}" if error else "not run"
        )
        for step in self.agg.ordered_steps():
            if step.status == "pending":
                events.append(StepSkipped(execution_id=self.execution_id, step_id=step.step_id, reason=reason))
        if events:
            await self.emit(events)
        agg = self.agg
        results = []
        for result in agg.step_results():
            if result["step_id"] in self.model_ms:
                result["model_ms"] = round(self.model_ms[result["step_id"]], 3)
            results.append(result)
        completed = sum(1 for s in agg.steps.values() if s.status == "completed")
        failed = sum(1 for s in agg.steps.values() if s.status == "failed")
        now = utcnow()
        duration = (now - agg.started_at).total_seconds() * 1000 if agg.started_at else 0.0
        await self.emit(
            [
                ExecutionFinished(
                    execution_id=self.execution_id,
                    recipe_id=agg.recipe_id,
                    status=status,
                    output_data=self._output_data() if status == "completed" else {},
                    error=error,
                    totals=ExecutionTotals(
                        duration_ms=round(duration, 3),
                        tokens=agg.total_tokens,
                        cost_usd=round(agg.total_cost_usd, 8),
                        steps_completed=completed,
                        steps_failed=failed,
                        steps_total=len(agg.steps),
                    ),
                    step_results=results,
                )
            ],
            finish=True,
        )

    def _output_data(self) -> dict[str, Any]:
        agg = self.agg
        plan = self.plan
        out: dict[str, Any] = {}
        steps = agg.ordered_steps()
        completed = [s for s in steps if s.status == "completed"]
        if plan is not None:
            for spec in plan.steps:
                step = agg.steps.get(spec.step_id)
                if spec.output_key and step is not None and step.status == "completed":
                    out[spec.output_key] = step.output
        for name in agg.recipe.get("outputs") or {}:
            if name not in out and name in agg.steps and agg.steps[name].status == "completed":
                out[name] = agg.steps[name].output
        out["final_output"] = completed[-1].output if completed else None
        out["steps"] = {s.step_id: s.output for s in completed}
        return out

    # ------------------------------------------------------------ steps
    def _start_step(self, spec: StepSpec, attempt: int, retry_at: datetime | None) -> asyncio.Task[str]:
        return asyncio.create_task(self._step_loop(spec, attempt, retry_at), name=f"step-{spec.step_id}")

    def _prompt(self, spec: StepSpec) -> tuple[str, tuple[str, ...]]:
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

    def _step_timeout(self, spec: StepSpec) -> float | None:
        value = spec.timeout if spec.timeout is not None else self.config.get("timeout_per_step")
        return float(value) if value else None

    async def _step_loop(self, spec: StepSpec, attempt: int, retry_at: datetime | None) -> str:
        sid = spec.step_id
        step = self.agg.steps[sid]
        if retry_at is not None:
            self.inflight[sid] = InFlight(attempt=attempt, waiting_retry=True)
            await asyncio.sleep(max(0.0, (retry_at - utcnow()).total_seconds()))
        while True:
            rec = InFlight(attempt=attempt)
            self.inflight[sid] = rec
            prompt, unknown = self._prompt(spec)
            await self.emit(
                [
                    StepStarted(
                        execution_id=self.execution_id,
                        step_id=sid,
                        order=step.order,
                        attempt=attempt,
                        agent_id=step.agent_id,
                        agent_name=step.agent_name,
                        prompt=prompt[:MAX_PROMPT_IN_EVENT],
                    )
                ]
            )
            rec.started = True
            rec.t0 = time.perf_counter()
            failure: StepFailure | None = None
            output = ""
            timeout = self._step_timeout(spec)
            try:
                if unknown:
                    raise StepFailure("unknown placeholders in prompt: " + ", ".join(unknown), "prompt_error")
                output = await asyncio.wait_for(self._agent_loop(spec, prompt, rec), timeout)
            except TimeoutError:
                failure = StepFailure(f"step exceeded timeout_per_step of {timeout:g}s", "timeout")
            except StepFailure as exc:
                failure = exc
            except ToolNotAllowed as exc:
                failure = StepFailure(str(exc), "tool_not_allowed")
            except ModelConfigError as exc:
                failure = StepFailure(str(exc), "config_error")
            except openai.RateLimitError as exc:
                failure = StepFailure(f"model rate limited (429): {_api_message(exc)}", "rate_limited")
            except openai.APIStatusError as exc:
                failure = StepFailure(f"model error {exc.status_code}: {_api_message(exc)}", "model_error")
            except openai.APIConnectionError as exc:
                failure = StepFailure(f"model unreachable: {exc}", "model_unavailable")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = StepFailure(f"{type(exc).__name__}: {exc}", "error")
            duration = rec.duration_ms()
            self.model_ms[sid] = rec.model_ms
            if failure is None:
                await self.emit(
                    [
                        StepCompleted(
                            execution_id=self.execution_id,
                            step_id=sid,
                            order=step.order,
                            attempt=attempt,
                            agent_id=step.agent_id,
                            agent_name=step.agent_name,
                            output=output,
                            tool_calls=rec.records(),
                            duration_ms=duration,
                            tokens=rec.tokens(),
                            cost_usd=round(rec.cost, 8),
                        )
                    ]
                )
                self.inflight.pop(sid, None)
                return "completed"
            max_retries = spec.max_retries if spec.max_retries is not None else int(self.config.get("max_retries", 1))
            failed = StepFailed(
                execution_id=self.execution_id,
                step_id=sid,
                order=step.order,
                attempt=attempt,
                agent_id=step.agent_id,
                agent_name=step.agent_name,
                error=str(failure),
                error_type=failure.error_type,
                tool_calls=rec.records(),
                duration_ms=duration,
                tokens=rec.tokens(),
                cost_usd=round(rec.cost, 8),
            )
            retryable = failure.error_type not in ("budget", "tool_not_allowed", "config_error", "prompt_error")
            if spec.error_handling == "retry" and retryable and attempt <= max_retries:
                delay = backoff_delay(
                    float(spec.retry_delay if spec.retry_delay is not None else self.config.get("retry_delay", 5)),
                    attempt,
                    float(self.config.get("max_retry_delay", 300)),
                    jitter=self.settings.retry_jitter,
                )
                when = utcnow() + timedelta(seconds=delay)
                await self.emit(
                    [
                        failed.model_copy(update={"will_retry": True, "retry_at": when}),
                        StepRetryScheduled(
                            execution_id=self.execution_id,
                            step_id=sid,
                            next_attempt=attempt + 1,
                            delay_s=round(delay, 6),
                            retry_at=when,
                        ),
                    ]
                )
                rec.started = False
                rec.waiting_retry = True
                await asyncio.sleep(delay)
                attempt += 1
                continue
            await self.emit([failed])
            self.inflight.pop(sid, None)
            if failure.error_type == "budget":
                return "budget"
            return "continue" if spec.error_handling == "continue" else "stop"

    async def _agent_loop(self, spec: StepSpec, prompt: str, rec: InFlight) -> str:
        agent = self.agg.agents.get(spec.agent_id)
        if agent is None:
            raise StepFailure(f"agent {spec.agent_id!r} is not available", "config_error")
        if str(agent.get("status") or "active") == "disabled":
            raise StepFailure(f"agent {spec.agent_id!r} is disabled", "config_error")
        target = await self.engine.clients.target(agent.get("model_config") or {}, self.agg.workspace_id)
        client = self.engine.clients.client(target)
        skills = [str(s) for s in agent.get("skills") or []]
        tools = self.engine.router.openai_tools(skills, workspace_id=self.agg.workspace_id)
        configuration = agent.get("configuration") or {}
        max_iterations = int(spec.max_iterations or configuration.get("max_iterations") or 10)
        system = str(
            agent.get("system_prompt")
            or configuration.get("system_prompt")
            or f"You are {agent.get('name') or 'an agent'}. {agent.get('description') or ''}".strip()
        )
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        prices = self.settings.prices
        for _ in range(max_iterations):
            self._check_cancel()
            kwargs: dict[str, Any] = {"model": target.model, "messages": messages}
            if tools:
                kwargs["tools"] = tools
            if target.temperature is not None:
                kwargs["temperature"] = target.temperature
            if target.max_tokens:
                kwargs["max_tokens"] = target.max_tokens
            t0 = time.perf_counter()
            response = await client.chat.completions.create(**kwargs)
            rec.model_ms += (time.perf_counter() - t0) * 1000
            usage = response.usage
            if usage is not None:
                rec.prompt_tokens += usage.prompt_tokens
                rec.completion_tokens += usage.completion_tokens
                rec.cost += cost_usd(prices, target.model, usage.prompt_tokens, usage.completion_tokens)
            self._check_budget(rec)
            if not response.choices:
                raise StepFailure("model returned no choices", "empty_output")
            message = response.choices[0].message
            calls: list[Any] = [c for c in (message.tool_calls or []) if getattr(c, "function", None) is not None]
            if calls:
                messages.append(
                    {
                        "role": "assistant",
                        "content": message.content,
                        "tool_calls": [
                            {
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.function.name, "arguments": c.function.arguments},
                            }
                            for c in calls
                        ],
                    }
                )
                for call in calls:
                    self._check_cancel()
                    name = call.function.name
                    try:
                        record = await self.engine.router.call(
                            skills, name, call.function.arguments, workspace_id=self.agg.workspace_id
                        )
                    except ToolNotAllowed as exc:
                        rec.tool_calls.append(exc.record)
                        raise
                    rec.tool_calls.append(record)
                    reply = {"error": record["error"]} if record["error"] else {"result": record["result"]}
                    messages.append(
                        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(reply, default=str)}
                    )
                continue
            content = message.content or ""
            if not content.strip():
                raise StepFailure("model returned an empty answer", "empty_output")
            return content
        raise StepFailure(f"no final answer within max_iterations={max_iterations}", "max_iterations")

    def _check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise asyncio.CancelledError

    def _check_budget(self, rec: InFlight) -> None:
        max_tokens = self.config.get("max_tokens")
        max_cost = self.config.get("max_cost_usd")
        tokens = self.agg.total_tokens + rec.prompt_tokens + rec.completion_tokens
        if max_tokens is not None and tokens > int(max_tokens):
            raise BudgetExceeded(f"token budget exceeded: {tokens} > max_tokens {int(max_tokens)}")
        cost = self.agg.total_cost_usd + rec.cost
        if max_cost is not None and cost > float(max_cost):
            raise BudgetExceeded(f"cost budget exceeded: {cost:.6f} > max_cost_usd {float(max_cost)}")


def _api_message(exc: openai.APIStatusError) -> str:
    # Provider error text can echo parts of the key; only a status-derived sentence and a code pass.
    return upstream_message(exc)

"""The soak: run the workload, inject the faults while it runs, wait, then measure.

Faults are spread over the run by progress (fault i of F fires once (i+1)/(F+1) of the executions were
submitted), one at a time, so each one hits a system carrying live executions. The clock for "terminal
within 2 minutes" starts when the last fault is over (its process restarted and ready, or the cut lifted)
and every execution was submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import asyncpg

from sous_local.chaos import checks
from sous_local.chaos.infra import SERVICE_NAMES, ChaosSystem
from sous_local.chaos.workload import Workload

# PostgreSQL is down for a moment (one of the faults): the soak keeps its last view and tries again.
DATABASE_DOWN = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True)
class Options:
    executions: int
    broker: str
    seed: int
    kills_per_service: int
    in_flight: int = 40
    submitters: int = 4
    settle_s: float = 120.0
    db_cut_s: float = 10.0


@dataclass
class Fault:
    name: str
    inject: Callable[[], None]


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:7.1f}s] {message}", flush=True)


def plan_faults(system: ChaosSystem, options: Options, rng: random.Random) -> list[Fault]:
    faults: list[Fault] = []
    for name in SERVICE_NAMES:
        for _ in range(options.kills_per_service):
            down = round(rng.uniform(0.5, 3.0), 1)
            faults.append(Fault(f"SIGKILL {name}, restart after {down}s", partial(system.kill_and_restart, name, down)))
    faults.append(Fault("SIGKILL PostgreSQL, restart after 2s", lambda: system.crash_postgres(2.0)))
    faults.append(Fault(f"restart the {options.broker} broker", lambda: system.restart_broker(2.0)))
    faults.append(
        Fault(
            f"cut the services' database connections for {options.db_cut_s:g}s",
            lambda: system.cut_database(options.db_cut_s),
        )
    )
    rng.shuffle(faults)
    return faults


class Soak:
    def __init__(self, system: ChaosSystem, options: Options) -> None:
        self.system = system
        self.options = options
        self.rng = random.Random(options.seed)
        self.clock = Clock()
        stack = system.running
        self.workload = Workload(stack.gateway_url, stack.jwt_secret, options.seed)
        self.statuses: dict[str, str] = {}
        self.submitted = 0
        self.faults_failed = 0
        self.faults_done = 0
        self.fault_count = 0
        self._faults_over = asyncio.Event()
        self.last_fault_end = 0.0

    @property
    def executor_dsn(self) -> str:
        return self.system.database_dsn("sous_executor")

    @property
    def quality_dsn(self) -> str:
        return self.system.database_dsn("sous_quality")

    async def _refresh_statuses(self) -> None:
        try:
            self.statuses = await checks.execution_statuses(self.executor_dsn, self.workload.workspace)
        except DATABASE_DOWN:
            pass  # PostgreSQL is down for a moment: keep the last view

    def _in_flight(self) -> int:
        finished = sum(1 for status in self.statuses.values() if status in checks.FINISHED)
        return self.submitted - finished

    async def _poll_statuses(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._refresh_statuses()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def _submit_all(self) -> None:
        indices = iter(range(self.options.executions))
        lock = asyncio.Lock()

        async def submitter() -> None:
            while True:
                async with lock:
                    index = next(indices, None)
                    if index is None:
                        return
                    while self._in_flight() >= self.options.in_flight or (
                        self.faults_done < self._faults_due(index) and not self._faults_over.is_set()
                    ):
                        await asyncio.sleep(0.2)
                    self.submitted += 1
                await self.workload.submit(index)
                if (index + 1) % 100 == 0:
                    self.clock.say(f"submitted {index + 1}/{self.options.executions}, in flight {self._in_flight()}")

        await asyncio.gather(*(submitter() for _ in range(self.options.submitters)))

    def _threshold(self, number: int) -> int:
        """Fault `number` fires once this many executions were submitted."""
        return (number + 1) * self.options.executions // (self.fault_count + 1)

    def _faults_due(self, index: int) -> int:
        # Submissions run on for half a segment into a fault, then wait for it to be over: every fault hits
        # executions in flight, and the workload spans every fault however long recoveries take.
        half_segment = self.options.executions // (self.fault_count + 1) // 2
        return sum(1 for n in range(self.fault_count) if self._threshold(n) + half_segment <= index)

    async def _inject_faults(self, faults: list[Fault]) -> None:
        total = len(faults)
        for number, fault in enumerate(faults):
            threshold = self._threshold(number)
            while self.submitted < threshold:
                await asyncio.sleep(0.2)
            began = time.monotonic()
            self.clock.say(f"fault {number + 1}/{total}: {fault.name}")
            try:
                await asyncio.to_thread(fault.inject)
            except Exception as error:
                self.faults_failed += 1
                self.clock.say(f"  the system did not recover from it: {type(error).__name__}: {error}")
                traceback.print_exc()
            else:
                self.clock.say(f"  recovered in {time.monotonic() - began:.1f}s")
            self.faults_done += 1
            self.last_fault_end = time.monotonic()
        self._faults_over.set()

    async def run(self) -> checks.Report:
        opts = self.options
        self.clock.say(f"workspace {self.workload.workspace}: creating agents and recipes")
        await self.workload.setup()
        faults = plan_faults(self.system, opts, self.rng)
        self.fault_count = len(faults)
        self.clock.say(f"{opts.executions} executions, {len(faults)} faults, in flight <= {opts.in_flight}")
        stop = asyncio.Event()
        poller = asyncio.create_task(self._poll_statuses(stop))
        fault_task = asyncio.create_task(self._inject_faults(faults))
        fault_task.add_done_callback(lambda _: self._faults_over.set())
        try:
            await self._submit_all()
            self.clock.say("every execution submitted; waiting for the last fault to be over")
            await fault_task
            # The last segment of submissions may come after the last fault: they get the same time.
            deadline = max(self.last_fault_end, time.monotonic()) + opts.settle_s
            self.clock.say(f"last fault over, all submitted; executions have {opts.settle_s:g}s to finish")
            terminal_at = await self._wait_terminal(deadline)
            quality_deadline = max(deadline, (terminal_at or deadline) + 60.0)
            await self._wait_quality(quality_deadline)
        finally:
            stop.set()
            await poller
            if not fault_task.done():
                fault_task.cancel()
            await self.workload.close()
        return await self._measure(faults)

    def _known(self) -> set[str]:
        requested = {s.execution_id for s in self.workload.stats.submitted if s.execution_id}
        return requested | set(self.statuses)

    async def _wait_terminal(self, deadline: float) -> float | None:
        while True:
            await self._refresh_statuses()
            pending = [e for e in self._known() if self.statuses.get(e) not in checks.FINISHED]
            if not pending:
                self.clock.say("every execution is terminal")
                return time.monotonic()
            if time.monotonic() > deadline:
                self.clock.say(f"deadline: {len(pending)} executions not terminal")
                return None
            await asyncio.sleep(1.0)

    async def _wait_quality(self, deadline: float) -> None:
        agents = self.workload.agent_ids
        while True:
            try:
                copies, runs = await checks.quality_progress(self.quality_dsn, self.workload.workspace, agents)
                figures = await checks.executor_event_figures(self.executor_dsn, self.workload.workspace, agents)
            except DATABASE_DOWN:
                copies, runs, figures = {}, -1, {"final_outcomes": -2}
            behind = [e for e in self._known() if copies.get(e) not in checks.FINISHED]
            if not behind and runs == figures["final_outcomes"]:
                self.clock.say("the quality service has applied every execution")
                return
            if time.monotonic() > deadline:
                self.clock.say(f"deadline: quality is behind on {len(behind)} executions")
                return
            await asyncio.sleep(1.0)

    async def _measure(self, faults: list[Fault]) -> checks.Report:
        report = checks.Report()
        workspace, agents = self.workload.workspace, self.workload.agent_ids
        stats = self.workload.stats
        await self._refresh_statuses()
        requested = {s.execution_id for s in stats.submitted if s.execution_id}
        known = set(self.statuses)
        figures = await checks.executor_event_figures(self.executor_dsn, workspace, agents)
        copies, runs = await checks.quality_progress(self.quality_dsn, workspace, agents)
        calls, calls_per_step = await checks.model_calls(self.system.running.model_url, self.workload.run_id)
        all_calls, _ = await checks.model_calls(self.system.running.model_url, "")
        attempts_per_step = await checks.attempts_per_step(self.executor_dsn, workspace)
        steps = set(calls_per_step) | set(attempts_per_step)
        paid_twice = sum(max(0, calls_per_step[s] - attempts_per_step[s]) for s in steps)
        unpaid = sum(max(0, attempts_per_step[s] - calls_per_step[s]) for s in steps)
        # An attempt whose runner was killed before it called the model cost nothing: the ratio is taken over
        # the attempts that reached the model, so it is 1.0 exactly when no attempt was paid for twice.
        reached = sum(min(calls_per_step[s], attempts_per_step[s]) for s in steps)
        dlq = await checks.dead_lettered(self.system.bootstrap)
        parked = await checks.parked_rows(
            (name, self.system.database_dsn(f"sous_{name}")) for name in ("catalog", "executor", "quality")
        )

        report.add("executions requested (202)", len(requested), None)
        report.add("submissions never answered (request deadline)", stats.unanswered)
        report.add("faults injected", self.faults_done, len(faults))
        report.add("faults the system did not recover from", self.faults_failed)
        report.add("executions lost (requested but unknown to the executor)", len(requested - known))
        lost = sorted(requested - known)
        pending = sorted(e for e in requested | known if self.statuses.get(e) not in checks.FINISHED)
        report.add(f"executions not terminal {self.options.settle_s:g}s after the last fault", len(pending))
        if lost:
            report.notes.append(f"lost: {', '.join(lost[:10])}")
        if pending:
            report.notes.append(f"not terminal: {', '.join(f'{e} ({self.statuses.get(e)})' for e in pending[:10])}")
        report.add("steps with more than one completion", figures["twice_completed"])
        attempts = figures["attempts"]
        report.add("step attempts recorded", attempts, None)
        report.add("model calls received", calls, None)
        report.add(
            "model calls per step attempt that reached the model", round(calls / reached, 4) if reached else 0.0, 1.0
        )
        report.add("  model calls beyond one per attempt (paid twice)", paid_twice)
        report.add("  attempts recorded without a model call", unpaid, None)
        report.add("records dead-lettered (*.dlq topics)", dlq)
        report.add("executions with more than one ExecutionFinished", figures["finished_twice"])
        report.add("agent runs applied twice by quality", max(0, runs - figures["final_outcomes"]))
        report.add("agent runs missing at quality", max(0, figures["final_outcomes"] - runs))
        report.add(
            "finished executions quality never saw finish",
            sum(1 for e in known if self.statuses.get(e) in checks.FINISHED and copies.get(e) not in checks.FINISHED),
        )
        report.add("HTTP 500 answers (a fault should give 503 with a code)", stats.refused.get(500, 0), None)
        report.add("ambiguous submissions (sent, answer lost)", stats.ambiguous, None)
        report.add("executions from ambiguous submissions", len(known - requested), None)
        report.add("outbox rows parked", sum(parked.values()), None)
        if all_calls >= checks.MAX_LOGGED_CALLS:
            report.notes.append("the model server's call log is full: calls may be undercounted")
        if stats.refused:
            report.notes.append(f"retried answers by status: {dict(sorted(stats.refused.items()))}")
        statuses: dict[str, int] = {}
        for status in self.statuses.values():
            statuses[status] = statuses.get(status, 0) + 1
        report.notes.append(f"final statuses: {dict(sorted(statuses.items()))}")
        return report

"""Pure rules of how steps and runs end: typed outcomes, which outcome event counts, the closing events.

A step's task ends with a StepOutcome; the run loop turns the first STOP or BUDGET into a RunEnding,
and the events that close a run (interrupted attempts failed, unstarted steps skipped, the finish)
are computed here from the aggregate alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sous_events.envelope import EventPayload
from sous_events.events.executor import (
    ExecutionFinished,
    ExecutionTotals,
    StepCompleted,
    StepFailed,
    StepSkipped,
    TokenUsage,
    ToolCallRecord,
)
from sous_executor.domain.execution import Execution, StepState
from sous_executor.domain.outputs import summary_output_data, summary_result
from sous_executor.domain.planning import Plan

FINAL_STEP_STATUSES = frozenset({"completed", "failed", "skipped", "cancelled"})


class StepOutcome(StrEnum):
    """How a step's task ended, as the run loop sees it."""

    COMPLETED = "completed"
    CONTINUE = "continue"  # failed, and the recipe goes on without it
    STOP = "stop"  # failed, and the run stops
    BUDGET = "budget"  # failed on the run's budget: the run stops


class RunStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RunEnding:
    """How a run ends, and what its unfinished step attempts are failed with."""

    status: RunStatus
    error: str | None = None
    step_error: str = ""  # "" -> "interrupted"
    step_error_type: str = ""  # "" -> "cancelled"

    @classmethod
    def completed(cls) -> RunEnding:
        return cls(RunStatus.COMPLETED)

    @classmethod
    def invalid_recipe(cls, reason: str) -> RunEnding:
        return cls(RunStatus.FAILED, f"invalid recipe: {reason}", step_error_type="error")

    @classmethod
    def stopped_by(cls, execution: Execution, step_id: str, *, interrupting: bool) -> RunEnding:
        """A step failed under error_handling=stop; `interrupting` fails the attempts still running with it."""
        message = stop_message(execution, step_id)
        return cls(RunStatus.FAILED, message, message if interrupting else "", "cancelled")

    @classmethod
    def aborted(cls, status: RunStatus, error: str, step_error_type: str) -> RunEnding:
        """Steps still running are interrupted: they fail with the run's own error."""
        return cls(status, error, error, step_error_type)

    @classmethod
    def cancelled(cls) -> RunEnding:
        return cls.aborted(RunStatus.CANCELLED, "cancelled by request", "cancelled")

    @classmethod
    def timed_out(cls, total_timeout: float) -> RunEnding:
        return cls.aborted(RunStatus.FAILED, f"total_timeout of {total_timeout:g}s exceeded", "timeout")

    @classmethod
    def over_budget(cls, reason: str) -> RunEnding:
        return cls.aborted(RunStatus.FAILED, reason, "budget")


@dataclass(frozen=True)
class AttemptSoFar:
    """What an interrupted attempt of this runner did before the run ended (started=False: nothing yet)."""

    attempt: int
    started: bool
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    duration_ms: float = 0.0
    tokens: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0


@dataclass
class ResumeState:
    """Where a run (re)starts: steps already done, a failure that already stops it, attempts to resume."""

    finished: set[str] = field(default_factory=set)
    stop_failure: str | None = None
    resume: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)


def accepts_outcome(status: str, current_attempt: int, outcome_attempt: int) -> bool:
    """Whether a StepCompleted/StepFailed for `outcome_attempt` may still be recorded.

    One outcome per attempt and none once the step is final: a cancel or abort racing the step's own
    completion loses (or wins) cleanly instead of recording the step twice.
    """
    if status in FINAL_STEP_STATUSES:
        return False
    return outcome_attempt >= current_attempt


def records_outcome(execution: Execution, payload: EventPayload) -> bool:
    """Whether `payload` may be appended: outcomes only while `accepts_outcome`, every other event always."""
    if not isinstance(payload, StepCompleted | StepFailed):
        return True
    step = execution.steps.get(payload.step_id)
    return step is None or accepts_outcome(step.status, step.attempt, payload.attempt)


def resume_point(step: StepState) -> tuple[int, datetime | None]:
    """The attempt a running step continues with: its scheduled retry, else a new attempt now."""
    if step.next_attempt is not None and not step.in_flight:
        return step.next_attempt, step.retry_at
    return step.attempt + 1, None


def resume_state(execution: Execution, plan: Plan) -> ResumeState:
    state = ResumeState()
    for step in execution.steps.values():
        if step.status in ("completed", "skipped", "cancelled"):
            state.finished.add(step.step_id)
        elif step.status == "failed":
            state.finished.add(step.step_id)
            spec = plan.by_id.get(step.step_id)
            if spec is not None and spec.error_handling != "continue":
                state.stop_failure = step.step_id
        elif step.status == "running":
            state.resume[step.step_id] = resume_point(step)
    return state


def stop_message(execution: Execution, step_id: str) -> str:
    step = execution.steps.get(step_id)
    return f"step {step_id} failed: {step.error if step else 'error'}"


def kept_without_output(execution: Execution) -> bool:
    """Whether the rerun still has to record kept steps its request names without their outputs (those are
    read from the original run)."""
    return any(
        raw.get("output") is None and _unrecorded(execution, str(raw.get("step_id")))
        for raw in execution.reused_results
    )


def _unrecorded(execution: Execution, step_id: str) -> bool:
    step = execution.steps.get(step_id)
    return step is not None and step.status != "completed"


def reused_completions(
    execution: Execution, plan: Plan, original: Mapping[str, StepState] | None = None
) -> list[StepCompleted]:
    """A rerun's steps kept from the original run, recorded as completed without running them.

    A request names each kept step; its output and tool calls come from the request when it carries them
    (requests made before they were left out), else from the `original` run's steps.
    """
    events: list[StepCompleted] = []
    for raw in execution.reused_results:
        sid = str(raw.get("step_id"))
        step = execution.steps.get(sid)
        if step is None or step.status == "completed" or sid not in plan.by_id:
            continue
        source = (original or {}).get(sid)
        output: Any = raw.get("output")
        calls: Any = raw.get("tool_calls")
        output_format = "text"
        if output is None and source is not None:
            output, calls, output_format = source.output, source.tool_calls, source.output_format
        events.append(
            StepCompleted(
                execution_id=execution.execution_id,
                step_id=sid,
                order=step.order,
                attempt=int(raw.get("attempt") or 1),
                agent_id=step.agent_id,
                agent_name=step.agent_name,
                output=str(output or ""),
                tool_calls=[ToolCallRecord.model_validate(t) for t in calls or []],
                duration_ms=0.0,
                tokens=TokenUsage(),
                cost_usd=0.0,
                reused=True,
                output_format=output_format,
            )
        )
    return events


def closing_events(
    execution: Execution, interrupted: Mapping[str, AttemptSoFar], ending: RunEnding
) -> list[EventPayload]:
    """Before the finish: fail every unfinished attempt, skip every step that never started."""
    error = ending.step_error or "interrupted"
    error_type = ending.step_error_type or "cancelled"
    events: list[EventPayload] = []
    for sid, so_far in sorted(interrupted.items()):
        step = execution.steps[sid]
        events.append(
            StepFailed(
                execution_id=execution.execution_id,
                step_id=sid,
                order=step.order,
                attempt=so_far.attempt if so_far.started else max(step.attempt, 1),
                agent_id=step.agent_id,
                agent_name=step.agent_name,
                error=error,
                error_type=error_type,
                will_retry=False,
                tool_calls=so_far.tool_calls if so_far.started else [],
                duration_ms=so_far.duration_ms if so_far.started else 0.0,
                tokens=so_far.tokens if so_far.started else TokenUsage(),
                cost_usd=round(so_far.cost_usd, 8) if so_far.started else 0.0,
            )
        )
    for step in execution.ordered_steps():
        if step.status == "running" and step.step_id not in interrupted:
            # Started by an earlier runner of this execution and never resumed here (the run ended first).
            events.append(interrupted_outcome(execution, step, error, error_type))
    if ending.status == RunStatus.CANCELLED:
        reason = "run cancelled before this step started"
    else:
        reason = f"run ended before this step started: {ending.error}" if ending.error else "not run"
    for step in execution.ordered_steps():
        if step.status == "pending":
            events.append(StepSkipped(execution_id=execution.execution_id, step_id=step.step_id, reason=reason))
    return events


def interrupted_outcome(execution: Execution, step: StepState, error: str, error_type: str) -> StepFailed:
    """The failure of an attempt no runner finished, with the usage it reported."""
    prompt, completion, cost = step.pending_usage.get(step.attempt, (0, 0, 0.0))
    return StepFailed(
        execution_id=execution.execution_id,
        step_id=step.step_id,
        order=step.order,
        attempt=max(step.attempt, 1),
        agent_id=step.agent_id,
        agent_name=step.agent_name,
        error=error,
        error_type=error_type,
        tokens=TokenUsage(prompt=prompt, completion=completion, total=prompt + completion),
        cost_usd=round(cost, 8),
    )


BARE_ERROR_CHARS = 2000


def bare_finish(finished: ExecutionFinished) -> ExecutionFinished:
    """A finish without its summary (step results, output previews) and with its error cut: what is recorded
    when the whole one would be too large to store. The steps' own events still hold every result and output."""
    error = finished.error[:BARE_ERROR_CHARS] if finished.error else finished.error
    return finished.model_copy(update={"step_results": [], "output_data": {}, "output_refs": {}, "error": error})


def finished_event(
    execution: Execution, ending: RunEnding, model_ms: Mapping[str, float], now: datetime
) -> ExecutionFinished:
    results = []
    for result in execution.step_results():
        if result["step_id"] in model_ms:
            result["model_ms"] = round(model_ms[result["step_id"]], 3)
        results.append(summary_result(result))
    completed = ending.status == RunStatus.COMPLETED
    full, refs = execution.full_output_data() if completed else ({}, {})
    duration = (now - execution.started_at).total_seconds() * 1000 if execution.started_at else 0.0
    steps = execution.steps.values()
    return ExecutionFinished(
        execution_id=execution.execution_id,
        template_id=execution.template_id,
        status=ending.status.value,
        output_data=summary_output_data(full),
        error=ending.error,
        totals=ExecutionTotals(
            duration_ms=round(duration, 3),
            tokens=execution.total_tokens,
            cost_usd=round(execution.total_cost_usd, 8),
            steps_completed=sum(1 for s in steps if s.status == "completed"),
            steps_failed=sum(1 for s in steps if s.status == "failed"),
            steps_total=len(execution.steps),
        ),
        step_results=results,
        summary=True,
        output_refs=refs,
    )

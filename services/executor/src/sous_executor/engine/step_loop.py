"""A step's attempts: start, run the agent, record the one outcome, retry by the step's error handling."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from sous_events.events.executor import StepCompleted, StepFailed, StepRetryScheduled, TokenUsage
from sous_executor.adapters.leases import LeaseLost
from sous_executor.domain.outcomes import StepOutcome
from sous_executor.domain.outputs import cut_to_bytes
from sous_executor.domain.planning import StepSpec
from sous_executor.domain.retry_policy import RetryRule, after_failure, is_crash_loop
from sous_executor.domain.step_start import step_started
from sous_executor.engine.attempt import InFlight, StepFailure, classify
from sous_executor.engine.output_gate import OutputInvalid, checked_answer, contract_prompt
from sous_service.text import clean_text

if TYPE_CHECKING:
    from sous_executor.engine.runner import Run


def utcnow() -> datetime:
    return datetime.now(UTC)


async def run_step(run: Run, spec: StepSpec, attempt: int, retry_at: datetime | None) -> StepOutcome:
    """Run the step to its outcome, retrying as its RetryRule says."""
    sid = spec.step_id
    step = run.agg.steps[sid]
    if retry_at is not None:
        run.inflight[sid] = InFlight(attempt=attempt, waiting_retry=True)
        await run.pause(max(0.0, (retry_at - utcnow()).total_seconds()))
    # An attempt the run's request opened is on record already: it is not one of the starts before it.
    opened = run.opened_with_request(sid, attempt)
    if is_crash_loop(step.unfinished_starts - opened, run.settings.crash_loop_claims):
        return await _crash_loop(run, spec)
    while True:
        rec = InFlight(attempt=attempt)
        run.inflight[sid] = rec
        prompt, unknown = run.prompt(spec)
        prompt = contract_prompt(run, spec, prompt)
        run.checkpoint()
        if not opened:
            await run.emit([step_started(run.agg, spec, attempt, prompt)])
        opened = False
        rec.started = True
        rec.t0 = time.perf_counter()
        failure: StepFailure | None = None
        output, output_format = "", "text"
        timeout = run.step_timeout(spec)
        try:
            if unknown:
                raise StepFailure("unknown placeholders in prompt: " + ", ".join(unknown), "prompt_error")
            answer = await asyncio.wait_for(checked_answer(run, spec, prompt, rec), timeout)
            output, output_format = answer.output, answer.output_format
        except (asyncio.CancelledError, LeaseLost, SQLAlchemyError):
            # Not the step's failure: a cancel, a lost lease or a database outage stop the attempt unrecorded
            # here; the run records it (cancel) or the next lease holder resumes it.
            raise
        except Exception as exc:
            failure = classify(exc, timeout)
        duration = rec.duration_ms()
        run.model_ms[sid] = rec.model_ms
        if failure is None:
            cut = cut_to_bytes(output, run.settings.event_output_max_bytes)
            # Staged: written with the run's next append (the next step's start, or the run's end).
            await run.journal.stage(
                [
                    StepCompleted(
                        execution_id=run.execution_id,
                        step_id=sid,
                        order=step.order,
                        attempt=attempt,
                        agent_id=step.agent_id,
                        agent_name=step.agent_name,
                        output=cut.text,
                        tool_calls=rec.records(),
                        duration_ms=duration,
                        tokens=rec.tokens(),
                        cost_usd=round(rec.cost, 8),
                        output_truncated=cut.truncated,
                        output_chars=cut.original_chars if cut.truncated else None,
                        output_format=output_format,
                    )
                ]
            )
            run.inflight.pop(sid, None)
            return StepOutcome.COMPLETED
        failed = StepFailed(
            execution_id=run.execution_id,
            step_id=sid,
            order=step.order,
            attempt=attempt,
            agent_id=step.agent_id,
            agent_name=step.agent_name,
            error=clean_text(str(failure)),
            error_type=failure.error_type,
            tool_calls=rec.records(),
            duration_ms=duration,
            tokens=rec.tokens(),
            cost_usd=round(rec.cost, 8),
            failed_checks=failure.records() if isinstance(failure, OutputInvalid) else [],
        )
        rule = RetryRule.of(spec, run.config)
        decision = rule.after_failure(failure.error_type, attempt)
        if decision.retry:
            delay = rule.delay(attempt, jitter=run.settings.retry_jitter)
            when = utcnow() + timedelta(seconds=delay)
            await run.emit(
                [
                    failed.model_copy(update={"will_retry": True, "retry_at": when}),
                    StepRetryScheduled(
                        execution_id=run.execution_id,
                        step_id=sid,
                        next_attempt=attempt + 1,
                        delay_s=round(delay, 6),
                        retry_at=when,
                    ),
                ]
            )
            rec.started = False
            rec.waiting_retry = True
            await run.pause(delay)
            attempt += 1
            continue
        await run.journal.stage([failed])
        run.inflight.pop(sid, None)
        assert decision.outcome is not None
        return decision.outcome


async def _crash_loop(run: Run, spec: StepSpec) -> StepOutcome:
    """The step's last attempts each killed their runner: fail it instead of calling the model again."""
    step = run.agg.steps[spec.step_id]
    prompt, completion, cost = step.pending_usage.get(step.attempt, (0, 0, 0.0))
    limit = run.settings.crash_loop_claims
    await run.emit(
        [
            StepFailed(
                execution_id=run.execution_id,
                step_id=spec.step_id,
                order=step.order,
                attempt=step.attempt,
                agent_id=step.agent_id,
                agent_name=step.agent_name,
                error=f"step started {step.unfinished_starts} times without an outcome (limit {limit}): "
                "every runner that took it stopped before recording one",
                error_type="crash_loop",
                tokens=TokenUsage(prompt=prompt, completion=completion, total=prompt + completion),
                cost_usd=round(cost, 8),
            )
        ]
    )
    run.inflight.pop(spec.step_id, None)
    outcome = after_failure("crash_loop", spec.error_handling, step.attempt, 0).outcome
    assert outcome is not None  # a crash loop is never retried
    return outcome

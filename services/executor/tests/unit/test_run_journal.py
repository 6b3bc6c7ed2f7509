"""Unit tests: a model call's usage waits for the run's next append, and the budget counts it meanwhile; a
step's outcome is staged (folded at once, written with the next append)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from sous_events.envelope import Envelope
from sous_events.events.executor import (
    ExecutionFinished,
    ExecutionRequested,
    StepCompleted,
    StepFailed,
    StepStarted,
    StepUsageRecorded,
    TokenUsage,
)
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict
from sous_executor.domain.execution import Execution
from sous_executor.engine.fence import LeaseGuard
from sous_executor.engine.journal import RunJournal

pytestmark = pytest.mark.unit
RECIPE = {"template_id": "r", "steps": [{"step_id": "s", "order": 1, "agent_id": "a", "prompt_template": "p"}]}


class RecordingStream:
    """Folds what is appended into the execution, as the real stream does, and keeps each batch's types."""

    def __init__(self, failures: int = 0, conflicts: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.versions: list[list[int]] = []
        self.finishes: list[bool] = []
        self.stored: list[Envelope] = [requested()]
        self.failures = failures
        self.conflicts = conflicts

    async def append(
        self, execution: Execution, envelopes: Sequence[Envelope], *, finish: bool, folded: int = 0
    ) -> None:
        assert [e.aggregate_version for e in envelopes] == list(
            range(execution.version - folded + 1, execution.version - folded + 1 + len(envelopes))
        )
        for envelope in envelopes[folded:]:
            execution.apply(envelope)
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrencyConflict("Execution", "e", execution.version)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("not a database error")
        self.batches.append([e.event_type for e in envelopes])
        self.versions.append([e.aggregate_version for e in envelopes])
        self.finishes.append(finish)
        self.stored.extend(envelopes)

    async def load(self, execution_id: str) -> list[Envelope]:
        return list(self.stored)


def requested() -> Envelope:
    payload = ExecutionRequested(execution_id="e", template_id="r", recipe=RECIPE)
    return make_event(payload, producer="executor", workspace_id="w", aggregate_id="e", aggregate_version=1)


def journal(stream: Any) -> RunJournal:
    guard = LeaseGuard(Any, "e", ttl_s=30.0, heartbeat_s=10.0, poll_s=1.0)  # type: ignore[arg-type]
    guard.renewed(time.monotonic())
    j = RunJournal(stream, "e", guard, lambda: None)
    j.replay([requested()])
    return j


def usage(tokens: int) -> StepUsageRecorded:
    return StepUsageRecorded(
        execution_id="e",
        step_id="s",
        attempt=1,
        tokens=TokenUsage(prompt=tokens, completion=0, total=tokens),
        cost_usd=0.5,
    )


async def test_a_final_answers_usage_is_superseded_by_its_outcome_in_the_same_append() -> None:
    stream = RecordingStream()
    j = journal(stream)
    await j.emit([StepStarted(execution_id="e", step_id="s", order=1)])
    j.defer_usage(usage(7))
    assert j.unwritten_usage() == (7, 0.5)
    assert (j.execution.total_tokens, len(stream.batches)) == (0, 1)

    await j.emit([StepCompleted(execution_id="e", step_id="s", order=1, output="ok", tokens=TokenUsage(total=7))])

    assert stream.batches == [["StepStarted"], ["StepCompleted"]]
    assert j.unwritten_usage() == (0, 0.0)
    assert j.execution.total_tokens == 7


async def test_usage_of_another_attempt_and_an_estimated_charge_are_written_with_the_outcome() -> None:
    stream = RecordingStream()
    j = journal(stream)
    await j.emit([StepStarted(execution_id="e", step_id="s", order=1)])
    cut = usage(4).model_copy(update={"estimated": True})
    j.defer_usage(cut)
    j.defer_usage(usage(3).model_copy(update={"attempt": 2}))
    outcome = StepFailed(
        execution_id="e", step_id="s", order=1, error="cut", error_type="timeout", tokens=TokenUsage(prompt=4, total=4)
    )

    await j.emit([outcome])

    assert stream.batches[-1] == ["StepUsageRecorded", "StepUsageRecorded", "StepFailed"]
    assert j.execution.total_tokens == 4 + 3


async def test_usage_written_before_a_tool_call_stays_on_record() -> None:
    stream = RecordingStream()
    j = journal(stream)
    await j.emit([StepStarted(execution_id="e", step_id="s", order=1)])
    j.defer_usage(usage(2))
    await j.flush()  # the agent loop flushes before the tool call
    j.defer_usage(usage(5))
    await j.stage([completed(tokens=7)])
    await j.flush()

    assert stream.batches == [["StepStarted"], ["StepUsageRecorded"], ["StepCompleted"]]
    assert j.execution.total_tokens == 7


async def test_flush_writes_deferred_usage_alone_and_nothing_when_there_is_none() -> None:
    stream = RecordingStream()
    j = journal(stream)
    await j.flush()
    assert stream.batches == []
    j.defer_usage(usage(3))
    await j.flush()
    assert stream.batches == [["StepUsageRecorded"]]
    assert j.execution.total_tokens == 3


async def test_usage_an_append_failed_to_write_waits_for_the_next_one() -> None:
    stream = RecordingStream(failures=1)
    j = journal(stream)
    j.defer_usage(usage(5))
    with pytest.raises(RuntimeError):
        await j.flush()
    assert j.unwritten_usage() == (5, 0.5)
    await j.flush()
    assert stream.batches == [["StepUsageRecorded"]]


async def test_usage_deferred_with_events_the_database_refuses_is_still_written() -> None:
    stream = RecordingStream(failures=1)
    j = journal(stream)
    j.defer_usage(usage(5))
    with pytest.raises(RuntimeError):
        await j.emit([StepCompleted(execution_id="e", step_id="s", order=1, output="ok", tokens=TokenUsage(total=5))])
    assert stream.batches == [["StepUsageRecorded"]]
    assert (j.unwritten_usage(), j.execution.total_tokens) == ((0, 0.0), 5)


def completed(step_id: str = "s", tokens: int = 5) -> StepCompleted:
    return StepCompleted(execution_id="e", step_id=step_id, order=1, output="ok", tokens=TokenUsage(total=tokens))


async def test_a_staged_outcome_is_folded_at_once_and_written_with_the_next_start() -> None:
    stream = RecordingStream()
    j = journal(stream)
    await j.emit([StepStarted(execution_id="e", step_id="s", order=1)])
    j.defer_usage(usage(5))
    await j.stage([completed()])

    assert stream.batches == [["StepStarted"]]  # nothing written yet
    assert j.pending
    assert (j.execution.steps["s"].status, j.execution.steps["s"].output, j.execution.version) == ("completed", "ok", 3)
    assert (j.unwritten_usage(), j.execution.total_tokens) == ((0, 0.0), 5)  # folded: counted once

    await j.emit([StepStarted(execution_id="e", step_id="t", order=2)])

    assert stream.batches == [["StepStarted"], ["StepCompleted", "StepStarted"]]
    assert stream.versions == [[2], [3, 4]]
    assert j.execution.version == 4 and not j.pending


async def test_the_last_outcome_is_written_with_the_finish() -> None:
    stream = RecordingStream()
    j = journal(stream)
    await j.emit([StepStarted(execution_id="e", step_id="s", order=1)])
    await j.stage([completed()])
    await j.emit([ExecutionFinished(execution_id="e", template_id="r", status="completed")], finish=True)
    assert stream.batches[-1] == ["StepCompleted", "ExecutionFinished"]
    assert stream.finishes == [False, True]


async def test_flush_writes_staged_outcomes_alone() -> None:
    stream = RecordingStream()
    j = journal(stream)
    await j.emit([StepStarted(execution_id="e", step_id="s", order=1)])
    await j.stage([completed()])
    await j.flush()
    assert stream.batches == [["StepStarted"], ["StepCompleted"]]
    await j.flush()
    assert len(stream.batches) == 2


async def test_a_conflict_reloads_and_writes_the_staged_outcome_again_after_the_stream() -> None:
    stream = RecordingStream(conflicts=1)
    j = journal(stream)
    await j.stage([StepStarted(execution_id="e", step_id="s", order=1)])
    await j.stage([completed()])
    await j.emit([StepStarted(execution_id="e", step_id="t", order=2)])
    assert stream.batches == [["StepStarted", "StepCompleted", "StepStarted"]]
    assert stream.versions == [[2, 3, 4]]
    assert j.execution.steps["s"].status == "completed"


async def test_a_second_outcome_for_a_staged_one_is_not_recorded() -> None:
    stream = RecordingStream()
    j = journal(stream)
    await j.emit([StepStarted(execution_id="e", step_id="s", order=1)])
    await j.stage([completed()])
    interrupted = StepFailed(execution_id="e", step_id="s", order=1, error="x", error_type="cancelled")
    await j.emit([interrupted])
    assert stream.batches[-1] == ["StepCompleted"]


async def test_a_refused_append_drops_the_staged_outcome_but_keeps_its_usage() -> None:
    stream = RecordingStream(failures=1)
    j = journal(stream)
    j.defer_usage(usage(5))
    await j.stage([completed()])
    with pytest.raises(RuntimeError):
        await j.emit([StepStarted(execution_id="e", step_id="t", order=2)])
    assert stream.batches == [["StepUsageRecorded"]]
    assert j.execution.steps["s"].status != "completed" and not j.pending

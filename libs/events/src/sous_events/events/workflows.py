"""Workflow events (executor): workflow definitions, and one stream per workflow run through nine stages."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sous_events.contracts import WorkflowSnapshot, WorkflowTotals
from sous_events.envelope import EventPayload


class WorkflowCreated(EventPayload):
    workflow: WorkflowSnapshot


class WorkflowUpdated(EventPayload):
    workflow: WorkflowSnapshot
    changed_fields: list[str] = []


class WorkflowDeleted(EventPayload):
    workflow_id: str


class WorkflowRunRequested(EventPayload):
    run_id: str
    workflow_id: str
    workflow: WorkflowSnapshot
    task: str
    input_data: dict[str, Any] = {}


class WorkflowStageStarted(EventPayload):
    run_id: str
    stage: int
    name: str
    # Stage 4 records the engine execution it starts here, in the same transaction as ExecutionRequested.
    detail: dict[str, Any] = {}


class WorkflowPlanRejected(EventPayload):
    run_id: str
    attempt: int
    errors: list[str]
    # The rejected answer (truncated), fed back to the planner with the errors on the next attempt.
    reply: str = ""


class WorkflowStageCompleted(EventPayload):
    run_id: str
    stage: int
    name: str
    output: dict[str, Any] = {}
    duration_ms: float = 0.0


class WorkflowStageFailed(EventPayload):
    run_id: str
    stage: int
    name: str
    error: str
    code: str = "stage_failed"
    detail: dict[str, Any] = {}


class WorkflowRunCancelRequested(EventPayload):
    run_id: str
    reason: str = ""


class WorkflowRunFinished(EventPayload):
    run_id: str
    workflow_id: str
    status: str
    final_answer: str | None = None
    error: str | None = None
    totals: WorkflowTotals = Field(default_factory=WorkflowTotals)

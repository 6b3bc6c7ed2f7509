"""Workflow definitions and workflow runs folded from their events (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sous_events import events as ev
from sous_events.envelope import Actor, Envelope
from sous_events.registry import payload_of
from sous_executor.workflows.stages import STAGES

WORKFLOW = "Workflow"
WORKFLOW_RUN = "WorkflowRun"
RUN_FINISHED = ("completed", "failed", "cancelled")


@dataclass
class WorkflowDefinition:
    workflow: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    deleted: bool = False

    def apply(self, envelope: Envelope) -> None:
        self.version = envelope.aggregate_version
        payload = payload_of(envelope)
        if isinstance(payload, (ev.WorkflowCreated, ev.WorkflowUpdated)):
            self.workflow = payload.workflow.as_dict()
        elif isinstance(payload, ev.WorkflowDeleted):
            self.deleted = True


@dataclass
class StageState:
    stage: int
    name: str
    status: str = "pending"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = None
    output: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    code: str | None = None
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "name": self.name,
            "status": self.status,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "duration_ms": self.duration_ms,
            "output": self.output,
            "error": self.error,
            "code": self.code,
            **({"rejected_plans": self.rejections} if self.rejections else {}),
        }


def _stages() -> list[StageState]:
    return [StageState(i, name) for i, name in enumerate(STAGES, start=1)]


@dataclass
class WorkflowRun:
    run_id: str = ""
    workflow_id: str = ""
    workspace_id: str = ""
    workflow: dict[str, Any] = field(default_factory=dict)
    task: str = ""
    input_data: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    stages: list[StageState] = field(default_factory=_stages)
    final_answer: str | None = None
    error: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False
    cancel_reason: str = ""
    version: int = 0
    correlation_id: str = ""
    actor: Actor | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def from_events(cls, events: list[Envelope]) -> WorkflowRun:
        run = cls()
        for envelope in events:
            run.apply(envelope)
        return run

    def stage(self, number: int) -> StageState:
        return self.stages[number - 1]

    @property
    def finished(self) -> bool:
        return self.status in RUN_FINISHED

    @property
    def execution_id(self) -> str | None:
        value = self.stage(4).detail.get("execution_id")
        return str(value) if value else None

    def next_stage(self) -> StageState | None:
        """The first stage not completed yet (it may be running already: a resumed run continues it)."""
        return next((s for s in self.stages if s.status != "completed"), None)

    def current(self) -> StageState | None:
        running = [s for s in self.stages if s.status in ("running", "failed")]
        return running[-1] if running else None

    def apply(self, envelope: Envelope) -> None:
        p = payload_of(envelope)
        self.version = envelope.aggregate_version
        at = envelope.occurred_at
        if isinstance(p, ev.WorkflowRunRequested):
            self.run_id = p.run_id
            self.workflow_id = p.workflow_id
            self.workspace_id = envelope.workspace_id
            self.workflow = p.workflow.as_dict()
            self.task = p.task
            self.input_data = dict(p.input_data)
            self.correlation_id = envelope.correlation_id
            self.actor = envelope.actor
            self.created_at = at
        elif isinstance(p, ev.WorkflowStageStarted):
            stage = self.stage(p.stage)
            stage.status, stage.started_at = "running", at
            stage.detail = dict(p.detail)
            if self.status == "pending":
                self.status, self.started_at = "running", at
        elif isinstance(p, ev.WorkflowPlanRejected):
            self.stage(1).rejections.append({"attempt": p.attempt, "errors": list(p.errors)})
        elif isinstance(p, ev.WorkflowStageCompleted):
            stage = self.stage(p.stage)
            stage.status, stage.completed_at = "completed", at
            stage.output = dict(p.output)
            stage.duration_ms = p.duration_ms
        elif isinstance(p, ev.WorkflowStageFailed):
            stage = self.stage(p.stage)
            stage.status, stage.completed_at = "failed", at
            stage.error, stage.code = p.error, p.code
        elif isinstance(p, ev.WorkflowRunCancelRequested):
            self.cancel_requested, self.cancel_reason = True, p.reason
        elif isinstance(p, ev.WorkflowRunFinished):
            self.status = p.status
            self.final_answer = p.final_answer
            self.error = p.error
            self.totals = p.totals.as_dict()
            self.completed_at = at

    def view(self) -> dict[str, Any]:
        current = self.current()
        done = sum(1 for s in self.stages if s.status == "completed")
        plan = self.stage(1).output.get("plan") or {}
        selection = {a["subtask_id"]: a for a in self.stage(2).output.get("assignments") or []}
        subtasks = [
            {
                "id": s.get("id"),
                "title": s.get("title"),
                "depends_on": s.get("depends_on") or [],
                "agent_id": (selection.get(s.get("id")) or {}).get("agent_id"),
                "agent_name": (selection.get(s.get("id")) or {}).get("agent_name"),
                "selection_reason": (selection.get(s.get("id")) or {}).get("reason"),
            }
            for s in plan.get("subtasks") or []
        ]
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow.get("name"),
            "status": self.status,
            "current_stage": {"number": current.stage, "name": current.name} if current else None,
            "completed_stages": done,
            "stages": [s.view() for s in self.stages],
            "plan": plan or None,
            "subtasks": subtasks,
            "execution_id": self.execution_id,
            "recipe_id": self.stage(4).detail.get("recipe_id"),
            "task": self.task,
            "input_data": self.input_data,
            "cancel_requested": self.cancel_requested,
            "final_answer": self.final_answer,
            "error_message": self.error,
            "totals": self.totals,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }

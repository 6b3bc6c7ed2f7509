"""The quality service's commands: what a caller or a consumed event asks of it, one handler each."""

from __future__ import annotations

from sous_events.events import StepCompleted, StepFailed
from sous_service.commands import Command


class AssessExecution(Command):
    template_id: str
    execution_id: str


class LearnFromExecution(Command):
    template_id: str
    execution_id: str


class LearnFromFinishedRun(Command):
    """Assess and learn from a run that just finished, when its recipe asks for auto-learning."""

    template_id: str
    execution_id: str


class CountAgentAttempt(Command):
    """Count a step's outcome towards its agent's metrics."""

    outcome: StepCompleted | StepFailed

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


class CountAgentAttempts(Command):
    """Count steps' outcomes towards their agent's metrics (each outcome's own agent_id names the agent)."""

    agent_id: str
    outcomes: list[StepCompleted | StepFailed]


class PublishAgentMetrics(Command):
    """Put the agent's attempts counted since its last AgentMetricsUpdated in a new one."""

    agent_id: str

"""The executor's commands: what a caller asks of it, as frozen typed models (one use case each).

Who asks travels beside the command, as the unit of work's `Caller`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from sous_service.commands import Command


class StartExecution(Command):
    """Start a recipe snapshot with its agents: validated, held to the workspace's limits, then requested.

    A rerun names the run it repeats, the step it restarts from, the results it keeps and the prompts it
    overrides; a cron or workflow start brings the execution id it reserved for the run.
    """

    workspace_id: str
    recipe: dict[str, Any]
    agents: dict[str, dict[str, Any]]
    input_data: dict[str, Any] | None
    triggered_by: str
    rerun_of: str | None = None
    from_step: str | None = None
    reused_results: list[dict[str, Any]] = Field(default_factory=list)
    step_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    execution_id: str | None = None
    # The client's Idempotency-Key: a request repeating one already taken answers with that execution.
    idempotency_key: str | None = None


class StartScheduledRun(Command):
    """Start a cron recipe's run due at `due_at`, once across every executor instance."""

    workspace_id: str
    recipe: dict[str, Any]
    due_at: datetime


class StartFromWebhook(Command):
    """Start a recipe for a verified webhook delivery, at most once per delivery id and within its rate."""

    workspace_id: str
    recipe: dict[str, Any]
    webhook_id: str
    message_id: str
    input_data: dict[str, Any]


class CancelExecution(Command):
    """Ask a running execution to stop; its runner ends the steps under way and records the run cancelled."""

    template_id: str
    execution_id: str
    reason: str = ""


class CancelWorkflowRun(Command):
    """Ask a workflow run to stop; in stage 4 its execution is cancelled too."""

    workflow_id: str
    run_id: str
    reason: str = ""

"""A workflow definition as the executor's workflow events carry it, and what a finished run totals.

Every field has a default, so events stored before these shapes were typed still decode; a snapshot written
out again carries exactly the fields it was given. The stages' `detail` and `output` stay free-form: each of
the nine stages writes its own shape (docs/workflows.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sous_events.contracts.base import Snapshot


class WorkflowSnapshot(Snapshot):
    """A workflow of a workspace: its task template, inputs and configuration."""

    id: str = ""
    workspace_id: str = ""
    name: str = ""
    description: str | None = None
    task_template: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    status: str = "active"
    configuration: dict[str, Any] = Field(default_factory=dict)
    created_by: str = ""
    created_at: str = ""
    updated_at: str = ""


class WorkflowTotals(Snapshot):
    """A finished run's usage over every stage, its duration and how many subtasks its plan had."""

    tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    subtasks: int = 0

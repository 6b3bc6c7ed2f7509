"""Workflow events with typed definitions and totals: stored payloads decode and write out unchanged."""

import pytest

from sous_events.contracts import WorkflowSnapshot, WorkflowTotals
from sous_events.events import WorkflowCreated, WorkflowRunFinished, WorkflowRunRequested

pytestmark = pytest.mark.unit

# A definition as the executor stored it while `workflow` was a plain dict.
STORED_WORKFLOW = {
    "id": "wf1",
    "workspace_id": "w1",
    "name": "Bake",
    "description": "",
    "task_template": "Bake {input.bread}",
    "inputs": {"bread": {"type": "string", "required": True}},
    "owner": "u1",
    "tags": ["baking"],
    "status": "active",
    "configuration": {"max_subtasks": 4},
    "created_by": "u1",
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
}


def test_a_stored_definition_writes_out_exactly_as_stored() -> None:
    created = WorkflowCreated.model_validate({"workflow": STORED_WORKFLOW})
    assert isinstance(created.workflow, WorkflowSnapshot)
    assert (created.workflow.name, created.workflow.tags) == ("Bake", ["baking"])
    assert created.model_dump(mode="json") == {"workflow": STORED_WORKFLOW}
    requested = {"run_id": "r", "workflow_id": "wf1", "workflow": STORED_WORKFLOW, "task": "t", "input_data": {}}
    assert WorkflowRunRequested.model_validate(requested).model_dump(mode="json") == requested


def test_a_stored_finish_reads_its_totals_typed() -> None:
    stored = {
        "run_id": "r",
        "workflow_id": "wf1",
        "status": "completed",
        "final_answer": "a loaf",
        "error": None,
        "totals": {"tokens": 12, "cost_usd": 0.001, "duration_ms": 950.5, "subtasks": 3},
    }
    finished = WorkflowRunFinished.model_validate(stored)
    assert isinstance(finished.totals, WorkflowTotals)
    assert (finished.totals.tokens, finished.totals.subtasks) == (12, 3)
    assert finished.model_dump(mode="json") == stored
    # A finish stored without totals still reads, and still writes `{}`.
    bare = {k: v for k, v in stored.items() if k != "totals"}
    assert WorkflowRunFinished.model_validate(bare).model_dump(mode="json") == {**bare, "totals": {}}

"""Read models built from workflow events beside the run row (live, and on rebuild)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.envelope import Envelope
from sous_events.events.workflows import WorkflowStageCompleted
from sous_events.registry import payload_of
from sous_executor.workflows import repository as repo
from sous_executor.workflows.model import WorkflowRun
from sous_executor.workflows.stages import MEMORY


async def apply_run_side_effects(session: AsyncSession, envelope: Envelope, run: WorkflowRun) -> None:
    """Stage 8's output is the memory entry; the memory table is its searchable projection."""
    payload = payload_of(envelope)
    if isinstance(payload, WorkflowStageCompleted) and payload.stage == MEMORY:
        # Stage 8's output is free-form like every stage's; its `memory` holds the task and the content.
        memory = payload.output.get("memory") or {}
        await repo.store_memory(
            session,
            run_id=run.run_id,
            workspace_id=run.workspace_id,
            workflow_id=run.workflow_id,
            task=str(memory.get("task") or run.task),
            content=str(memory.get("content") or ""),
            at=envelope.occurred_at,
        )

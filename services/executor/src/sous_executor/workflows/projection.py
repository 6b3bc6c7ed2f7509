"""Read models built from workflow events beside the run row (live, and on rebuild)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.envelope import Envelope
from sous_executor.workflows import repository as repo
from sous_executor.workflows.model import WorkflowRun
from sous_executor.workflows.stages import MEMORY


async def apply_run_side_effects(session: AsyncSession, envelope: Envelope, run: WorkflowRun) -> None:
    """Stage 8's output is the memory entry; the memory table is its searchable projection."""
    p = envelope.payload
    if envelope.event_type == "WorkflowStageCompleted" and int(p.get("stage") or 0) == MEMORY:
        memory = (p.get("output") or {}).get("memory") or {}
        await repo.store_memory(
            session,
            run_id=run.run_id,
            workspace_id=run.workspace_id,
            workflow_id=run.workflow_id,
            task=str(memory.get("task") or run.task),
            content=str(memory.get("content") or ""),
            at=envelope.occurred_at,
        )

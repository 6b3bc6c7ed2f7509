"""Rebuild the workflow read models (definitions, runs, memory) by replaying their streams."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope
from sous_events.projection import rebuild_projection
from sous_executor.workflows import repository as repo
from sous_executor.workflows.model import WORKFLOW, WORKFLOW_RUN, WorkflowDefinition, WorkflowRun
from sous_executor.workflows.projection import apply_run_side_effects
from sous_executor.workflows.tables import workflow_memory, workflow_runs, workflows


async def rebuild_workflow_read_models(sessions: async_sessionmaker[AsyncSession]) -> int:
    definitions: dict[str, WorkflowDefinition] = {}
    runs: dict[str, WorkflowRun] = {}

    async def reset(session: AsyncSession) -> None:
        for table in (workflows, workflow_runs, workflow_memory):
            await session.execute(delete(table))

    async def apply(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.aggregate_type == WORKFLOW:
            definition = definitions.setdefault(envelope.aggregate_id, WorkflowDefinition())
            definition.apply(envelope)
            await repo.project_workflow(session, definition.workflow, definition.version, definition.deleted)
            return
        run = runs.setdefault(envelope.aggregate_id, WorkflowRun())
        run.apply(envelope)
        await apply_run_side_effects(session, envelope, run)
        await repo.project_run(session, run)

    return await rebuild_projection(sessions, reset=reset, apply=apply, aggregate_types=[WORKFLOW, WORKFLOW_RUN])

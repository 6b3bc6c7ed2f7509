"""Copies of other services' data, kept from their events: the catalog's recipes, the executor's runs.

Scoring needs what the run used (the recipe snapshot, agents, inputs) and what it did (each step's final
state, the totals). Applied in the consumer's inbox transaction, so a redelivered event changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.contracts import StepResult
from sous_events.envelope import Envelope, EventPayload
from sous_events.events import (
    ExecutionFinished,
    ExecutionStarted,
    RecipeCreated,
    RecipeDeleted,
    RecipeUpdated,
    StepCompleted,
    StepFailed,
    StepSkipped,
)
from sous_quality.adapters import copies


async def keep_recipe(
    session: AsyncSession, envelope: Envelope, payload: RecipeCreated | RecipeUpdated | RecipeDeleted
) -> None:
    if isinstance(payload, (RecipeCreated, RecipeUpdated)):
        await copies.upsert_recipe(session, envelope.workspace_id, payload.recipe.as_dict(), envelope.occurred_at)
    elif isinstance(payload, RecipeDeleted):
        await copies.mark_recipe_deleted(session, envelope.workspace_id, payload.recipe_id, payload.template_id)


class RequestedRun(EventPayload):
    """An ExecutionRequested as its copy keeps it: the recipe and agents as written (a snapshot's written form
    is what its producer wrote), neither validated whole nor written out again."""

    execution_id: str
    template_id: str
    recipe: dict[str, Any]
    agents: dict[str, dict[str, Any]] = {}
    input_data: dict[str, Any] = {}


async def keep_requested(session: AsyncSession, envelope: Envelope, payload: RequestedRun) -> None:
    await copies.record_requested(
        session,
        workspace_id=envelope.workspace_id,
        execution_id=payload.execution_id,
        template_id=payload.template_id,
        recipe=payload.recipe,
        agents=payload.agents,
        input_data=payload.input_data,
        correlation_id=envelope.correlation_id,
        at=envelope.occurred_at,
    )


def _step_outcome(payload: StepCompleted | StepFailed) -> dict[str, Any]:
    """What a step's outcome event says about the step, success or failure alike."""
    return {
        "order": payload.order,
        "attempts": payload.attempt,
        "agent_id": payload.agent_id,
        "agent_name": payload.agent_name,
        "duration_ms": payload.duration_ms,
        "tokens": payload.tokens.total,
        "cost_usd": payload.cost_usd,
    }


async def keep_execution(session: AsyncSession, envelope: Envelope, payload: EventPayload) -> None:
    ws, at = envelope.workspace_id, envelope.occurred_at
    if isinstance(payload, ExecutionStarted):
        await copies.record_started(session, ws, payload.execution_id, payload.template_id, at)
    elif isinstance(payload, StepCompleted):
        copies.stage_step(
            session,
            payload.execution_id,
            payload.step_id,
            status="completed",
            output=payload.output,
            error=None,
            reused=payload.reused,
            **_step_outcome(payload),
        )
    elif isinstance(payload, StepFailed):
        copies.stage_step(
            session,
            payload.execution_id,
            payload.step_id,
            status="failed",
            error=payload.error,
            **_step_outcome(payload),
        )
    elif isinstance(payload, StepSkipped):
        copies.stage_step(session, payload.execution_id, payload.step_id, status="skipped")
    elif isinstance(payload, ExecutionFinished):
        await _keep_finished(session, envelope, payload)


def _step_result_values(result: StepResult) -> dict[str, Any]:
    given = result.model_fields_set
    values: dict[str, Any] = {
        "status": result.status,
        "order": result.order,
        "attempts": max(1, result.attempt),
        "agent_id": result.agent_id,
        "agent_name": result.agent_name,
        "duration_ms": result.duration_ms if "duration_ms" in given else None,
        "tokens": result.tokens_used.total if "tokens_used" in given else None,
        "cost_usd": result.cost_usd,
        "error": result.error,
    }
    if "output" in given:
        # Summaries (ExecutionFinished.summary) leave outputs to the steps' StepCompleted events.
        values["output"] = result.output
    return values


async def _keep_finished(session: AsyncSession, envelope: Envelope, payload: ExecutionFinished) -> None:
    await copies.ensure_execution(session, envelope.workspace_id, payload.execution_id, payload.template_id)
    summary = [(result.step_id, _step_result_values(result)) for result in payload.step_results if result.step_id]
    await copies.upsert_steps(session, payload.execution_id, summary)
    totals = payload.totals
    # The copies are read only for what the totals leave out (a run's copy and steps are the larger rows).
    duration = totals.duration_ms or None
    if duration is None:
        row = await copies.get_execution(session, payload.execution_id)
        assert row is not None
        began = row["started_at"] or row["requested_at"]
        duration = (envelope.occurred_at - began).total_seconds() * 1000 if began else None
    tokens_total: int | None = totals.tokens or None
    cost = totals.cost_usd
    if not tokens_total or not cost:
        steps = await copies.load_steps(session, payload.execution_id)
        tokens_total = tokens_total or sum(s.tokens or 0 for s in steps) or None
        cost = cost or sum(s.cost_usd for s in steps)
    await copies.record_finished(
        session,
        execution_id=payload.execution_id,
        status=payload.status,
        output_data=payload.output_data,
        error=payload.error,
        total_duration_ms=duration,
        total_tokens=tokens_total,
        total_cost_usd=cost,
        at=envelope.occurred_at,
    )

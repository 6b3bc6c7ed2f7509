"""SQL over the copies of other services' data: the catalog's recipes and the executor's executions and steps.

Every query that serves a caller filters by workspace.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_quality.adapters.tables import executions, recipes, step_results
from sous_quality.domain.record import ExecutionRecord, StepRecord, recipe_as_run, record_from_copies

# --- recipe copies -------------------------------------------------------------------------------


async def upsert_recipe(session: AsyncSession, workspace_id: str, recipe: dict[str, Any], at: datetime) -> None:
    steps = [s for s in (recipe.get("steps") or []) if isinstance(s, dict)]
    values = {
        "workspace_id": workspace_id,
        "template_id": str(recipe.get("template_id") or recipe.get("id")),
        "recipe_id": str(recipe.get("id") or recipe.get("template_id")),
        "deleted": False,
        "steps_count": len(steps),
        "steps": steps,
        "inputs": recipe.get("inputs") or {},
        "outputs": recipe.get("outputs") or {},
        "execution_config": recipe.get("execution_config") or {},
        "revision": int(recipe.get("revision") or 0),
        "updated_at": at,
    }
    stmt = pg_insert(recipes).values(**values)
    keep = {k: stmt.excluded[k] for k in values if k not in ("workspace_id", "template_id")}
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[recipes.c.workspace_id, recipes.c.template_id],
            set_=keep,
            # an older snapshot delivered late does not overwrite a newer one
            where=recipes.c.revision <= stmt.excluded.revision,
        )
    )


async def mark_recipe_deleted(session: AsyncSession, workspace_id: str, recipe_id: str, template_id: str) -> None:
    condition = recipes.c.template_id == template_id if template_id else recipes.c.recipe_id == recipe_id
    await session.execute(update(recipes).where(recipes.c.workspace_id == workspace_id, condition).values(deleted=True))


async def get_recipe(session: AsyncSession, workspace_id: str, template_id: str) -> RowMapping | None:
    result = await session.execute(
        select(recipes).where(recipes.c.workspace_id == workspace_id, recipes.c.template_id == template_id)
    )
    return result.mappings().first()


# --- execution copies ----------------------------------------------------------------------------


async def ensure_execution(session: AsyncSession, workspace_id: str, execution_id: str, template_id: str) -> None:
    await session.execute(
        pg_insert(executions)
        .values(execution_id=execution_id, workspace_id=workspace_id, template_id=template_id, status="pending")
        .on_conflict_do_nothing()
    )


async def record_requested(
    session: AsyncSession,
    *,
    workspace_id: str,
    execution_id: str,
    template_id: str,
    recipe: dict[str, Any],
    agents: dict[str, Any],
    input_data: dict[str, Any],
    correlation_id: str,
    at: datetime,
) -> None:
    values = {
        "execution_id": execution_id,
        "workspace_id": workspace_id,
        "template_id": template_id,
        "status": "pending",
        "recipe": recipe,
        "agents": agents,
        "input_data": input_data,
        "correlation_id": correlation_id,
        "requested_at": at,
    }
    stmt = pg_insert(executions).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[executions.c.execution_id],
            set_={k: stmt.excluded[k] for k in ("recipe", "agents", "input_data", "correlation_id", "requested_at")},
        )
    )


async def record_started(session: AsyncSession, execution_id: str, at: datetime) -> None:
    await session.execute(
        update(executions)
        .where(executions.c.execution_id == execution_id, executions.c.finished_at.is_(None))
        .values(status="running", started_at=at)
    )


async def record_finished(
    session: AsyncSession,
    *,
    execution_id: str,
    status: str,
    output_data: dict[str, Any],
    error: str | None,
    total_duration_ms: float | None,
    total_tokens: int | None,
    total_cost_usd: float,
    at: datetime,
) -> None:
    await session.execute(
        update(executions)
        .where(executions.c.execution_id == execution_id)
        .values(
            status=status,
            output_data=output_data,
            error=error,
            total_duration_ms=total_duration_ms,
            total_tokens=total_tokens,
            total_cost_usd=total_cost_usd,
            finished_at=at,
        )
    )


async def get_execution(session: AsyncSession, execution_id: str) -> RowMapping | None:
    result = await session.execute(select(executions).where(executions.c.execution_id == execution_id))
    return result.mappings().first()


async def revision_and_agents(session: AsyncSession, execution_id: str) -> RowMapping | None:
    """The recipe revision a run used and its agents, without reading the rest of the run's copy."""
    query = select(executions.c.recipe["revision"].label("revision"), executions.c.agents).where(
        executions.c.execution_id == execution_id
    )
    return (await session.execute(query)).mappings().first()


async def find_execution(
    session: AsyncSession, workspace_id: str, template_id: str, execution_id: str
) -> RowMapping | None:
    result = await session.execute(
        select(executions).where(
            executions.c.execution_id == execution_id,
            executions.c.workspace_id == workspace_id,
            executions.c.template_id == template_id,
        )
    )
    return result.mappings().first()


# --- step rows -----------------------------------------------------------------------------------


async def upsert_step(session: AsyncSession, execution_id: str, step_id: str, **values: Any) -> None:
    """Write what an event says about a step; attempts only grow."""
    row = {"execution_id": execution_id, "step_id": step_id, "status": values.get("status", "pending"), **values}
    stmt = pg_insert(step_results).values(**row)
    changes: dict[str, Any] = {k: stmt.excluded[k] for k in values if k != "attempts"}
    if "attempts" in values:
        changes["attempts"] = func.greatest(step_results.c.attempts, stmt.excluded.attempts)
    if not changes:
        await session.execute(stmt.on_conflict_do_nothing())
        return
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[step_results.c.execution_id, step_results.c.step_id], set_=changes)
    )


async def load_steps(session: AsyncSession, execution_id: str) -> list[StepRecord]:
    result = await session.execute(select(step_results).where(step_results.c.execution_id == execution_id))
    return [
        StepRecord(
            step_id=row["step_id"],
            order=row["order"],
            agent_id=row["agent_id"],
            status=row["status"],
            attempts=row["attempts"],
            output=row["output"],
            duration_ms=row["duration_ms"],
            tokens=row["tokens"],
            cost_usd=row["cost_usd"],
            error=row["error"],
        )
        for row in result.mappings()
    ]


async def execution_record(session: AsyncSession, execution: RowMapping, recipe: RowMapping | None) -> ExecutionRecord:
    """What the domain scores: the run's copy, its steps and the recipe as the catalog has it now (`recipe`,
    the copy of it the caller read; None when there is none)."""
    snapshot: dict[str, Any] = execution["recipe"] or {}
    return record_from_copies(
        execution_id=execution["execution_id"],
        template_id=execution["template_id"],
        status=execution["status"],
        steps=await load_steps(session, execution["execution_id"]),
        recipe=recipe_as_run(snapshot, recipe),
        output_data=execution["output_data"],
        error_message=execution["error"],
        total_duration_ms=execution["total_duration_ms"],
        total_tokens=execution["total_tokens"],
        total_cost_usd=execution["total_cost_usd"],
        input_data=execution["input_data"],
        snapshot_inputs=snapshot.get("inputs") if "inputs" in snapshot else None,
    )

"""SQL over the quality service's tables. Every query that serves a caller filters by workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_quality.adapters.tables import (
    agent_metrics,
    analyses,
    assessments,
    executions,
    recipe_quality,
    recipes,
    step_results,
)
from sous_quality.domain.agents import AgentTotals
from sous_quality.domain.record import StepRecord

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


async def ensure_execution(session: AsyncSession, workspace_id: str, execution_id: str, recipe_id: str) -> None:
    await session.execute(
        pg_insert(executions)
        .values(execution_id=execution_id, workspace_id=workspace_id, recipe_id=recipe_id, status="pending")
        .on_conflict_do_nothing()
    )


async def record_requested(
    session: AsyncSession,
    *,
    workspace_id: str,
    execution_id: str,
    recipe_id: str,
    recipe: dict[str, Any],
    agents: dict[str, Any],
    input_data: dict[str, Any],
    correlation_id: str,
    at: datetime,
) -> None:
    values = {
        "execution_id": execution_id,
        "workspace_id": workspace_id,
        "recipe_id": recipe_id,
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


async def find_execution(
    session: AsyncSession, workspace_id: str, recipe_id: str, execution_id: str
) -> RowMapping | None:
    result = await session.execute(
        select(executions).where(
            executions.c.execution_id == execution_id,
            executions.c.workspace_id == workspace_id,
            executions.c.recipe_id == recipe_id,
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


# --- assessments, analyses, recipe quality -------------------------------------------------------


async def get_assessment(session: AsyncSession, workspace_id: str, execution_id: str) -> RowMapping | None:
    result = await session.execute(
        select(assessments).where(
            assessments.c.execution_id == execution_id, assessments.c.workspace_id == workspace_id
        )
    )
    return result.mappings().first()


async def insert_assessment(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(assessments).values(**values).on_conflict_do_nothing())


async def list_assessments(session: AsyncSession, workspace_id: str, recipe_id: str, limit: int) -> list[RowMapping]:
    result = await session.execute(
        select(assessments)
        .where(assessments.c.workspace_id == workspace_id, assessments.c.recipe_id == recipe_id)
        .order_by(assessments.c.assessed_at.desc(), assessments.c.execution_id.desc())
        .limit(limit)
    )
    return list(reversed(result.mappings().all()))


async def get_analysis(session: AsyncSession, workspace_id: str, execution_id: str) -> RowMapping | None:
    result = await session.execute(
        select(analyses).where(analyses.c.execution_id == execution_id, analyses.c.workspace_id == workspace_id)
    )
    return result.mappings().first()


async def insert_analysis(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(analyses).values(**values).on_conflict_do_nothing())


async def lock_recipe_quality(session: AsyncSession, workspace_id: str, template_id: str) -> RowMapping:
    """The recipe's quality row, created if missing and locked until the transaction ends."""
    await session.execute(
        pg_insert(recipe_quality)
        .values(workspace_id=workspace_id, template_id=template_id, assessment_count=0, learning_data={}, version=0)
        .on_conflict_do_nothing()
    )
    result = await session.execute(
        select(recipe_quality)
        .where(recipe_quality.c.workspace_id == workspace_id, recipe_quality.c.template_id == template_id)
        .with_for_update()
    )
    return result.mappings().one()


async def get_recipe_quality(session: AsyncSession, workspace_id: str, template_id: str) -> RowMapping | None:
    result = await session.execute(
        select(recipe_quality).where(
            recipe_quality.c.workspace_id == workspace_id, recipe_quality.c.template_id == template_id
        )
    )
    return result.mappings().first()


async def save_recipe_quality(session: AsyncSession, workspace_id: str, template_id: str, **values: Any) -> None:
    stmt = pg_insert(recipe_quality).values(workspace_id=workspace_id, template_id=template_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[recipe_quality.c.workspace_id, recipe_quality.c.template_id],
            set_={k: stmt.excluded[k] for k in values},
        )
    )


async def count_analyses(session: AsyncSession, workspace_id: str, recipe_id: str) -> int:
    result = await session.execute(
        select(func.count()).where(analyses.c.workspace_id == workspace_id, analyses.c.recipe_id == recipe_id)
    )
    return int(result.scalar_one())


# --- agent metrics -------------------------------------------------------------------------------


async def lock_agent(session: AsyncSession, agent_id: str, workspace_id: str) -> tuple[AgentTotals, int]:
    await session.execute(
        pg_insert(agent_metrics).values(agent_id=agent_id, workspace_id=workspace_id).on_conflict_do_nothing()
    )
    row = (
        (await session.execute(select(agent_metrics).where(agent_metrics.c.agent_id == agent_id).with_for_update()))
        .mappings()
        .one()
    )
    totals = AgentTotals(
        runs=row["runs"],
        successes=row["successes"],
        total_duration_ms=row["total_duration_ms"],
        total_tokens=row["total_tokens"],
        total_cost_usd=row["total_cost_usd"],
    )
    return totals, int(row["version"])


async def save_agent(session: AsyncSession, agent_id: str, totals: AgentTotals, version: int | None = None) -> None:
    values: dict[str, Any] = {
        "runs": totals.runs,
        "successes": totals.successes,
        "total_duration_ms": totals.total_duration_ms,
        "total_tokens": totals.total_tokens,
        "total_cost_usd": totals.total_cost_usd,
    }
    if version is not None:
        values["version"] = version
    await session.execute(update(agent_metrics).where(agent_metrics.c.agent_id == agent_id).values(**values))


async def get_agent(session: AsyncSession, agent_id: str) -> RowMapping | None:
    result = await session.execute(select(agent_metrics).where(agent_metrics.c.agent_id == agent_id))
    return result.mappings().first()

"""SQL over the quality service's own state: the aggregates' snapshot rows and the per-execution rows.

`recipe_quality` and `agent_metrics` hold the RecipeQuality and AgentMetrics aggregates at their streams'
versions; `assessments` and `analyses` hold one row per execution. All are written by `projections` only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.contracts import LearningData
from sous_quality.adapters.tables import agent_metrics, analyses, assessments, recipe_quality
from sous_quality.domain.agents import AgentMetrics, AgentTotals
from sous_quality.domain.recipe_quality import RecipeQuality

# --- assessments and analyses --------------------------------------------------------------------


async def get_assessment(session: AsyncSession, workspace_id: str, execution_id: str) -> RowMapping | None:
    result = await session.execute(
        select(assessments).where(
            assessments.c.execution_id == execution_id, assessments.c.workspace_id == workspace_id
        )
    )
    return result.mappings().first()


async def insert_assessment(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(assessments).values(**values).on_conflict_do_nothing())


async def get_analysis(session: AsyncSession, workspace_id: str, execution_id: str) -> RowMapping | None:
    result = await session.execute(
        select(analyses).where(analyses.c.execution_id == execution_id, analyses.c.workspace_id == workspace_id)
    )
    return result.mappings().first()


async def insert_analysis(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(analyses).values(**values).on_conflict_do_nothing())


# --- the RecipeQuality aggregate -----------------------------------------------------------------


def _recipe_quality(row: RowMapping) -> RecipeQuality:
    return RecipeQuality(
        workspace_id=row["workspace_id"],
        template_id=row["template_id"],
        rolling_score=row["quality_score"],
        assessment_count=row["assessment_count"],
        learning_data=LearningData.model_validate(row["learning_data"] or {}),
        version=row["version"],
    )


def _recipe_quality_where(workspace_id: str, template_id: str) -> Any:
    return (recipe_quality.c.workspace_id == workspace_id) & (recipe_quality.c.template_id == template_id)


async def lock_recipe_quality(session: AsyncSession, workspace_id: str, template_id: str) -> RecipeQuality:
    """The recipe's quality, created if missing and locked until the transaction ends (one statement when the
    row exists, as it does from a recipe's second run on)."""
    query = select(recipe_quality).where(_recipe_quality_where(workspace_id, template_id)).with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        await session.execute(
            pg_insert(recipe_quality)
            .values(workspace_id=workspace_id, template_id=template_id, assessment_count=0, learning_data={}, version=0)
            .on_conflict_do_nothing()
        )
        row = (await session.execute(query)).mappings().one()
    return _recipe_quality(row)


async def get_recipe_quality(session: AsyncSession, workspace_id: str, template_id: str) -> RecipeQuality | None:
    query = select(recipe_quality).where(_recipe_quality_where(workspace_id, template_id))
    row = (await session.execute(query)).mappings().first()
    return _recipe_quality(row) if row is not None else None


async def get_recipe_quality_scores(session: AsyncSession, workspace_id: str, template_id: str) -> RecipeQuality | None:
    """The recipe's quality without its learning_data (left empty), which is large and which applying an event
    never needs: every LearningRecorded carries the whole new learning_data."""
    columns = (
        recipe_quality.c.workspace_id,
        recipe_quality.c.template_id,
        recipe_quality.c.quality_score,
        recipe_quality.c.assessment_count,
        recipe_quality.c.version,
    )
    query = select(*columns).where(_recipe_quality_where(workspace_id, template_id))
    row = (await session.execute(query)).mappings().first()
    if row is None:
        return None
    return RecipeQuality(
        workspace_id=workspace_id,
        template_id=template_id,
        rolling_score=row["quality_score"],
        assessment_count=row["assessment_count"],
        version=row["version"],
    )


async def save_recipe_quality(session: AsyncSession, quality: RecipeQuality, *, learning_data: bool = True) -> None:
    """Write the recipe's quality; its learning_data only when `learning_data` (a new row starts empty)."""
    values: dict[str, Any] = {
        "quality_score": quality.rolling_score,
        "assessment_count": quality.assessment_count,
        "version": quality.version,
    }
    if learning_data:
        values["learning_data"] = quality.learning_data.as_dict()
    stmt = pg_insert(recipe_quality).values(
        workspace_id=quality.workspace_id, template_id=quality.template_id, **values
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[recipe_quality.c.workspace_id, recipe_quality.c.template_id],
            set_={k: stmt.excluded[k] for k in values},
        )
    )


# --- the AgentMetrics aggregate ------------------------------------------------------------------


async def lock_agent(session: AsyncSession, agent_id: str, workspace_id: str) -> AgentMetrics:
    """The agent's metrics, created if missing and locked until the transaction ends (one statement when the
    row exists)."""
    query = select(agent_metrics).where(agent_metrics.c.agent_id == agent_id).with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        await session.execute(
            pg_insert(agent_metrics).values(agent_id=agent_id, workspace_id=workspace_id).on_conflict_do_nothing()
        )
        row = (await session.execute(query)).mappings().one()
    totals = AgentTotals(
        runs=row["runs"],
        successes=row["successes"],
        total_duration_ms=row["total_duration_ms"],
        total_tokens=row["total_tokens"],
        total_cost_usd=row["total_cost_usd"],
    )
    return AgentMetrics(agent_id=agent_id, totals=totals, version=int(row["version"]))


async def save_agent(session: AsyncSession, metrics: AgentMetrics, workspace_id: str) -> None:
    """Write the agent's totals at its version, creating its row if missing."""
    totals = metrics.totals
    values = {
        "runs": totals.runs,
        "successes": totals.successes,
        "total_duration_ms": totals.total_duration_ms,
        "total_tokens": totals.total_tokens,
        "total_cost_usd": totals.total_cost_usd,
        "version": metrics.version,
    }
    stmt = pg_insert(agent_metrics).values(agent_id=metrics.agent_id, workspace_id=workspace_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[agent_metrics.c.agent_id], set_={k: stmt.excluded[k] for k in values}
        )
    )

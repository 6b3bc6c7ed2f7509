"""What callers read: assessments, analyses, a recipe's suggestions and its quality history.

Reads only; each is filtered by workspace, and a recipe the workspace knows nothing of is RecipeNotFound.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.contracts import LearningData
from sous_quality.adapters import copies, repository
from sous_quality.adapters.tables import analyses, assessments
from sous_quality.domain.errors import RecipeNotFound


def _iso(at: datetime) -> str:
    return at.isoformat()


def assessment_view(row: RowMapping) -> dict[str, Any]:
    return {
        "execution_id": row["execution_id"],
        "recipe_id": row["template_id"],
        "assessed_at": _iso(row["assessed_at"]),
        "quality_score": row["quality_score"],
        "rolling_score": row["rolling_score"],
        "breakdown": row["breakdown"],
        "grade": row["grade"],
        "bottlenecks": row["bottlenecks"],
        "counted": row["counted"],
    }


def analysis_view(row: RowMapping) -> dict[str, Any]:
    return {
        "execution_id": row["execution_id"],
        "recipe_id": row["template_id"],
        "analyzed_at": _iso(row["analyzed_at"]),
        "patterns": row["patterns"],
        "suggestions": row["suggestions"],
        "performance_metrics": row["performance_metrics"],
    }


async def assessment(session: AsyncSession, workspace_id: str, execution_id: str) -> dict[str, Any] | None:
    row = await repository.get_assessment(session, workspace_id, execution_id)
    return assessment_view(row) if row is not None else None


async def analysis(session: AsyncSession, workspace_id: str, execution_id: str) -> dict[str, Any] | None:
    row = await repository.get_analysis(session, workspace_id, execution_id)
    return analysis_view(row) if row is not None else None


async def _known_recipe(session: AsyncSession, workspace_id: str, template_id: str) -> RowMapping | None:
    """The recipe's quality row; RecipeNotFound when the workspace knows nothing of this recipe."""
    recipe = await copies.get_recipe(session, workspace_id, template_id)
    quality = await repository.get_recipe_quality(session, workspace_id, template_id)
    if (recipe is None and quality is None) or (recipe is not None and recipe["deleted"]):
        raise RecipeNotFound(template_id)
    return quality


async def suggestions(session: AsyncSession, workspace_id: str, template_id: str) -> dict[str, Any]:
    quality = await _known_recipe(session, workspace_id, template_id)
    data = LearningData.model_validate(quality["learning_data"] or {}) if quality is not None else LearningData()
    count = select(func.count()).where(analyses.c.workspace_id == workspace_id, analyses.c.template_id == template_id)
    return {
        "recipe_id": template_id,
        "quality_score": quality["quality_score"] if quality is not None else None,
        "suggestions": [suggestion.as_dict() for suggestion in data.latest_suggestions],
        "patterns": [pattern.as_dict() for pattern in data.latest_patterns],
        "performance_metrics": data.latest_performance.as_dict(),
        "last_analyzed_at": data.last_analyzed_at,
        "analysis_count": int((await session.execute(count)).scalar_one()),
    }


async def history(session: AsyncSession, workspace_id: str, template_id: str, limit: int) -> dict[str, Any]:
    quality = await _known_recipe(session, workspace_id, template_id)
    latest = (
        select(assessments)
        .where(
            assessments.c.workspace_id == workspace_id,
            assessments.c.template_id == template_id,
            assessments.c.counted,
        )
        .order_by(assessments.c.assessed_at.desc(), assessments.c.execution_id.desc())
        .limit(limit)
    )
    rows = reversed((await session.execute(latest)).mappings().all())
    return {
        "recipe_id": template_id,
        "quality_score": quality["quality_score"] if quality is not None else None,
        "assessment_count": quality["assessment_count"] if quality is not None else 0,
        "points": [
            {
                "execution_id": r["execution_id"],
                "assessed_at": _iso(r["assessed_at"]),
                "quality_score": r["quality_score"],
                "rolling_score": r["rolling_score"],
                "grade": r["grade"],
                "breakdown": r["breakdown"],
                "recipe_revision": r["recipe_revision"],
                "models": r["models"],
            }
            for r in rows
        ],
    }

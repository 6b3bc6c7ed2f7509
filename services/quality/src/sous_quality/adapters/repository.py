"""SQL over the quality service's own state: the aggregates' snapshot rows and the per-execution rows.

`recipe_quality` and `agent_metrics` hold the RecipeQuality and AgentMetrics aggregates at their streams'
versions; `assessments` and `analyses` hold one row per execution. All are written by `projections` only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import jsontext, learning_fold
from sous_quality.adapters import statements
from sous_quality.adapters.tables import analyses, assessments, recipe_quality
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


_RECORDED_SQL = (
    "SELECT EXISTS (SELECT FROM assessments WHERE execution_id = $1 AND workspace_id = $2), "
    "EXISTS (SELECT FROM analyses WHERE execution_id = $1 AND workspace_id = $2)"
)


async def assessed_and_analysed(session: AsyncSession, workspace_id: str, execution_id: str) -> tuple[bool, bool]:
    """Whether the run has its assessment, and its analysis, in one statement."""
    row = await statements.one(session, _RECORDED_SQL, execution_id, workspace_id)
    return bool(row[0]), bool(row[1])


_ASSESSMENT = """
INSERT INTO assessments (execution_id, workspace_id, template_id, assessed_at, quality_score, rolling_score,
    breakdown, grade, bottlenecks, recipe_revision, models, counted)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10, $11::jsonb, $12)
ON CONFLICT DO NOTHING
"""
# $13: the event's version. A counted assessment's rolling score is the one given, one more assessment counted;
# an uncounted one leaves the recipe's score and count as they are.
_ASSESSED_SQL = f"""
WITH assessed AS ({_ASSESSMENT})
INSERT INTO recipe_quality AS q (workspace_id, template_id, quality_score, assessment_count, learning_data, version)
VALUES ($2, $3, $6, 1, '{{}}', $13)
ON CONFLICT (workspace_id, template_id) DO UPDATE SET quality_score = EXCLUDED.quality_score,
    assessment_count = q.assessment_count + 1, version = EXCLUDED.version
"""
_UNCOUNTED_SQL = f"""
WITH assessed AS ({_ASSESSMENT})
INSERT INTO recipe_quality AS q (workspace_id, template_id, assessment_count, learning_data, version)
VALUES ($2, $3, 0, '{{}}', $13)
ON CONFLICT (workspace_id, template_id) DO UPDATE SET version = EXCLUDED.version
"""


async def record_assessment(
    session: AsyncSession,
    *,
    execution_id: str,
    workspace_id: str,
    template_id: str,
    assessed_at: datetime,
    quality_score: float,
    rolling_score: float,
    breakdown: dict[str, float],
    grade: str,
    bottlenecks: list[dict[str, Any]],
    recipe_revision: int | None,
    models: list[str],
    counted: bool,
    version: int,
) -> None:
    """The run's assessment row and, in the same statement, the recipe's quality at `version`."""
    await statements.execute(
        session,
        _ASSESSED_SQL if counted else _UNCOUNTED_SQL,
        execution_id,
        workspace_id,
        template_id,
        assessed_at,
        quality_score,
        rolling_score,
        jsontext.dumps(breakdown),
        grade,
        jsontext.dumps(bottlenecks),
        recipe_revision,
        jsontext.dumps(models),
        counted,
        version,
    )


async def get_analysis(session: AsyncSession, workspace_id: str, execution_id: str) -> RowMapping | None:
    result = await session.execute(
        select(analyses).where(analyses.c.execution_id == execution_id, analyses.c.workspace_id == workspace_id)
    )
    return result.mappings().first()


# --- the RecipeQuality aggregate -----------------------------------------------------------------


_LOCK_QUALITY_SQL = (
    "SELECT quality_score, assessment_count, version FROM recipe_quality "
    "WHERE workspace_id = $1 AND template_id = $2 FOR UPDATE"
)
_NEW_QUALITY_SQL = """
INSERT INTO recipe_quality (workspace_id, template_id, assessment_count, learning_data, version)
VALUES ($1, $2, 0, '{}', 0)
ON CONFLICT DO NOTHING
"""


async def lock_recipe_quality(session: AsyncSession, workspace_id: str, template_id: str) -> RecipeQuality:
    """The recipe's quality, created if missing and locked until the transaction ends (one statement when the
    row exists; its learning_data, which no decision reads, stays in the row)."""
    row = await statements.first(session, _LOCK_QUALITY_SQL, workspace_id, template_id)
    if row is None:
        await statements.execute(session, _NEW_QUALITY_SQL, workspace_id, template_id)
        row = await statements.one(session, _LOCK_QUALITY_SQL, workspace_id, template_id)
    return RecipeQuality(
        workspace_id=workspace_id,
        template_id=template_id,
        rolling_score=row["quality_score"],
        assessment_count=row["assessment_count"],
        version=row["version"],
    )


async def get_recipe_quality(session: AsyncSession, workspace_id: str, template_id: str) -> RowMapping | None:
    """The recipe's quality row as the API reads it: rolling score, assessment count, learning_data."""
    where = (recipe_quality.c.workspace_id == workspace_id) & (recipe_quality.c.template_id == template_id)
    return (await session.execute(select(recipe_quality).where(where))).mappings().first()


# $4..$8: the LearningRecorded's execution_id, analyzed_at (its text), patterns, suggestions,
# performance_metrics; $9: when it was recorded. The run's analysis row, and the analysis folded into the
# recipe's learning_data.
_LEARNING_SQL = f"""
WITH analysis AS (
    INSERT INTO analyses (execution_id, workspace_id, template_id, analyzed_at, patterns, suggestions,
        performance_metrics)
    VALUES ($4, $1, $2, $9, $6::jsonb, $7::jsonb, $8::jsonb)
    ON CONFLICT DO NOTHING
)
INSERT INTO recipe_quality AS q (workspace_id, template_id, assessment_count, learning_data, version)
VALUES ($1, $2, 0, {learning_fold.folded("'{}'::jsonb", 4)}, $3)
ON CONFLICT (workspace_id, template_id) DO UPDATE SET learning_data = {learning_fold.folded("q.learning_data", 4)},
    version = EXCLUDED.version
"""


async def record_learning(
    session: AsyncSession,
    workspace_id: str,
    template_id: str,
    version: int,
    *,
    execution_id: str,
    analyzed_at: str,
    recorded_at: datetime,
    documents: tuple[str, str, str],
) -> None:
    """A learning at `version`: the run's analysis row, and the analysis folded into the recipe's learning_data
    (its scores as they are), in one statement. `documents`: the JSON texts of its patterns, suggestions and
    performance_metrics."""
    await statements.execute(
        session,
        _LEARNING_SQL,
        workspace_id,
        template_id,
        version,
        execution_id,
        analyzed_at,
        *documents,
        recorded_at,
    )


# --- the AgentMetrics aggregate ------------------------------------------------------------------


_LOCK_AGENT_SQL = (
    "SELECT runs, successes, total_duration_ms, total_tokens, total_cost_usd, version FROM agent_metrics "
    "WHERE agent_id = $1 FOR UPDATE"
)
_NEW_AGENT_SQL = """
INSERT INTO agent_metrics (agent_id, workspace_id, runs, successes, total_duration_ms, total_tokens, total_cost_usd,
    version)
VALUES ($1, $2, 0, 0, 0, 0, 0, 0)
ON CONFLICT DO NOTHING
"""
_SAVE_AGENT_SQL = """
INSERT INTO agent_metrics (agent_id, workspace_id, runs, successes, total_duration_ms, total_tokens, total_cost_usd,
    version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (agent_id) DO UPDATE SET runs = EXCLUDED.runs, successes = EXCLUDED.successes,
    total_duration_ms = EXCLUDED.total_duration_ms, total_tokens = EXCLUDED.total_tokens,
    total_cost_usd = EXCLUDED.total_cost_usd, version = EXCLUDED.version
"""


async def lock_agent(session: AsyncSession, agent_id: str, workspace_id: str) -> AgentMetrics:
    """The agent's metrics, created if missing and locked until the transaction ends (one statement when the
    row exists)."""
    row = await statements.first(session, _LOCK_AGENT_SQL, agent_id)
    if row is None:
        await statements.execute(session, _NEW_AGENT_SQL, agent_id, workspace_id)
        row = await statements.one(session, _LOCK_AGENT_SQL, agent_id)
    totals = AgentTotals(
        runs=row["runs"],
        successes=row["successes"],
        total_duration_ms=row["total_duration_ms"],
        total_tokens=row["total_tokens"],
        total_cost_usd=row["total_cost_usd"],
    )
    return AgentMetrics(agent_id=agent_id, totals=totals, version=int(row["version"]))


_STAGE_ATTEMPTS_SQL = """
INSERT INTO agent_attempts (agent_id, workspace_id, runs, successes, total_duration_ms, total_tokens, total_cost_usd)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
# Taken by the transaction that puts them in an event: deleted and summed in one statement (under the agent's
# lock, so two takers never count a row twice).
_TAKE_ATTEMPTS_SQL = """
WITH taken AS (DELETE FROM agent_attempts WHERE agent_id = $1 RETURNING *)
SELECT count(*) AS rows, coalesce(sum(runs), 0) AS runs, coalesce(sum(successes), 0) AS successes,
    coalesce(sum(total_duration_ms), 0) AS total_duration_ms, coalesce(sum(total_tokens), 0) AS total_tokens,
    coalesce(sum(total_cost_usd), 0) AS total_cost_usd
FROM taken
"""
_STAGED_AGENTS_SQL = "SELECT DISTINCT agent_id, workspace_id FROM agent_attempts"


async def stage_attempts(session: AsyncSession, agent_id: str, workspace_id: str, added: AgentTotals) -> None:
    """Attempts counted towards the agent, until an AgentMetricsUpdated takes them."""
    await statements.execute(
        session,
        _STAGE_ATTEMPTS_SQL,
        agent_id,
        workspace_id,
        added.runs,
        added.successes,
        added.total_duration_ms,
        added.total_tokens,
        added.total_cost_usd,
    )


async def take_staged_attempts(session: AsyncSession, agent_id: str) -> AgentTotals | None:
    """What the agent's staged attempts add up to, taken out of staging; None when there are none."""
    row = await statements.one(session, _TAKE_ATTEMPTS_SQL, agent_id)
    if not row["rows"]:
        return None
    return AgentTotals(
        runs=int(row["runs"]),
        successes=int(row["successes"]),
        total_duration_ms=float(row["total_duration_ms"]),
        total_tokens=int(row["total_tokens"]),
        total_cost_usd=float(row["total_cost_usd"]),
    )


async def agents_with_staged_attempts(session: AsyncSession) -> list[tuple[str, str]]:
    """(agent_id, workspace_id) of every agent with attempts staged."""
    return [(r["agent_id"], r["workspace_id"]) for r in await statements.rows(session, _STAGED_AGENTS_SQL)]


async def save_agent(session: AsyncSession, metrics: AgentMetrics, workspace_id: str) -> None:
    """Write the agent's totals at its version, creating its row if missing."""
    totals = metrics.totals
    await statements.execute(
        session,
        _SAVE_AGENT_SQL,
        metrics.agent_id,
        workspace_id,
        totals.runs,
        totals.successes,
        float(totals.total_duration_ms),
        totals.total_tokens,
        float(totals.total_cost_usd),
        metrics.version,
    )

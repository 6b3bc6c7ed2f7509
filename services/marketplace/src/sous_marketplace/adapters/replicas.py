"""Replicas of catalog recipes and agents and of quality scores, kept from their events.

Each row remembers the aggregate version it reflects and only a newer version replaces it, so a
duplicate or late delivery never rolls a replica back; the consumer inbox drops exact duplicates.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import driver
from sous_events.contracts import AgentSnapshot, RecipeSnapshot
from sous_events.dispatch import TypedHandler
from sous_events.envelope import Envelope, EventPayload
from sous_events.events import (
    AgentRegistered,
    AgentRemoved,
    AgentUpdated,
    QualityAssessed,
    RecipeCreated,
    RecipeDeleted,
    RecipeUpdated,
)
from sous_marketplace.adapters.tables import agent_replicas, quality_assessments, quality_scores, recipe_replicas
from sous_marketplace.domain.quality_gate import QualityStanding


async def on_recipe_published(session: AsyncSession, event: Envelope, payload: RecipeCreated | RecipeUpdated) -> None:
    await _upsert_recipe(session, event, payload.recipe)


async def on_recipe_deleted(session: AsyncSession, event: Envelope, payload: RecipeDeleted) -> None:
    await session.execute(delete(recipe_replicas).where(recipe_replicas.c.recipe_id == event.aggregate_id))


async def on_agent_published(session: AsyncSession, event: Envelope, payload: AgentRegistered | AgentUpdated) -> None:
    await _upsert_agent(session, event, payload.agent)


async def on_agent_removed(session: AsyncSession, event: Envelope, payload: AgentRemoved) -> None:
    await session.execute(delete(agent_replicas).where(agent_replicas.c.agent_id == event.aggregate_id))


class AssessedScore(EventPayload):
    """What a QualityAssessed tells the replicas (not its breakdown nor its bottlenecks)."""

    template_id: str
    execution_id: str
    quality_score: float
    rolling_score: float
    grade: str
    counted: bool = True


# The recipe's score (a newer assessment only), the assessed run, and the recipe's approved listings, whose
# standing the new score may move: one statement, prepared once per connection.
_ASSESSED = """
WITH score AS (
    INSERT INTO quality_scores AS q (workspace_id, template_id, score, grade, version, assessed_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (workspace_id, template_id) DO UPDATE
    SET score = excluded.score, grade = excluded.grade, version = excluded.version, assessed_at = excluded.assessed_at
    WHERE q.version < excluded.version
), assessment AS (
    INSERT INTO quality_assessments
        (workspace_id, template_id, execution_id, quality_score, rolling_score, version, assessed_at)
    VALUES ($1, $2, $7, $8, $3, $5, $6)
    ON CONFLICT DO NOTHING
)
SELECT id FROM listings WHERE source_workspace_id = $1 AND recipe_id = $2 AND status = 'approved' ORDER BY id
"""


async def on_quality_assessed(
    session: AsyncSession, event: Envelope, payload: QualityAssessed | AssessedScore
) -> list[str]:
    """Keep the score and the assessed run; the ids of the recipe's approved listings. An assessment that is
    not counted (a run in which no step ran) moves neither the score nor the assessed runs: nothing to keep."""
    if not payload.counted:
        return []
    listed = await driver.fetch(
        session,
        _ASSESSED,
        event.workspace_id,
        payload.template_id,
        payload.rolling_score,
        payload.grade,
        event.aggregate_version,
        event.occurred_at,
        payload.execution_id,
        payload.quality_score,
    )
    return [row[0] for row in listed]


# What the marketplace's replicas consumer handles (entrypoints/consumers.py adds the listings' quality gate).
HANDLERS: dict[type[EventPayload], TypedHandler] = {
    RecipeCreated: on_recipe_published,
    RecipeUpdated: on_recipe_published,
    RecipeDeleted: on_recipe_deleted,
    AgentRegistered: on_agent_published,
    AgentUpdated: on_agent_published,
    AgentRemoved: on_agent_removed,
    QualityAssessed: on_quality_assessed,
}
VIEWS: dict[type[EventPayload], type[EventPayload]] = {QualityAssessed: AssessedScore}


async def _upsert_recipe(session: AsyncSession, event: Envelope, recipe: RecipeSnapshot) -> None:
    workspace_id = recipe.workspace_id or event.workspace_id
    template_id = recipe.template_id
    if not template_id:
        return
    recipe_id = event.aggregate_id
    # A template id freed by a deleted recipe and taken by a new one: the newer aggregate wins the key.
    await session.execute(
        delete(recipe_replicas).where(
            recipe_replicas.c.workspace_id == workspace_id,
            recipe_replicas.c.template_id == template_id,
            recipe_replicas.c.recipe_id != recipe_id,
        )
    )
    stmt = pg_insert(recipe_replicas).values(
        recipe_id=recipe_id,
        workspace_id=workspace_id,
        template_id=template_id,
        name=recipe.name or template_id,
        snapshot=recipe.as_dict(),
        version=event.aggregate_version,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[recipe_replicas.c.recipe_id],
            set_={
                "template_id": stmt.excluded.template_id,
                "name": stmt.excluded.name,
                "snapshot": stmt.excluded.snapshot,
                "version": stmt.excluded.version,
            },
            where=recipe_replicas.c.version < stmt.excluded.version,
        )
    )


async def _upsert_agent(session: AsyncSession, event: Envelope, agent: AgentSnapshot) -> None:
    stmt = pg_insert(agent_replicas).values(
        agent_id=event.aggregate_id,
        workspace_id=agent.workspace_id or event.workspace_id,
        name=agent.name,
        snapshot=agent.as_dict(),
        version=event.aggregate_version,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[agent_replicas.c.agent_id],
            set_={"name": stmt.excluded.name, "snapshot": stmt.excluded.snapshot, "version": stmt.excluded.version},
            where=agent_replicas.c.version < stmt.excluded.version,
        )
    )


async def find_recipe(session: AsyncSession, workspace_id: str, template_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(recipe_replicas.c.snapshot).where(
                recipe_replicas.c.workspace_id == workspace_id, recipe_replicas.c.template_id == template_id
            )
        )
    ).first()
    return dict(row.snapshot) if row is not None else None


async def find_agents(session: AsyncSession, workspace_id: str, agent_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not agent_ids:
        return {}
    rows = await session.execute(
        select(agent_replicas.c.agent_id, agent_replicas.c.snapshot).where(
            agent_replicas.c.workspace_id == workspace_id, agent_replicas.c.agent_id.in_(agent_ids)
        )
    )
    return {r.agent_id: dict(r.snapshot) for r in rows}


async def agents_by_name(session: AsyncSession, workspace_id: str) -> dict[str, str]:
    rows = await session.execute(
        select(agent_replicas.c.name, agent_replicas.c.agent_id)
        .where(agent_replicas.c.workspace_id == workspace_id)
        .order_by(agent_replicas.c.agent_id)
    )
    out: dict[str, str] = {}
    for r in rows:
        out.setdefault(r.name, r.agent_id)
    return out


async def recipe_names(session: AsyncSession, workspace_id: str) -> set[str]:
    rows = await session.execute(select(recipe_replicas.c.name).where(recipe_replicas.c.workspace_id == workspace_id))
    return set(rows.scalars())


async def template_ids(session: AsyncSession, workspace_id: str) -> set[str]:
    rows = await session.execute(
        select(recipe_replicas.c.template_id).where(recipe_replicas.c.workspace_id == workspace_id)
    )
    return set(rows.scalars())


RecipeKey = tuple[str, str]


async def quality_standings(
    session: AsyncSession, recipes: list[RecipeKey], trend_points: int
) -> dict[RecipeKey, QualityStanding]:
    """(workspace_id, template_id) -> rolling score, assessed runs and the last `trend_points` rolling scores."""
    keys = list(dict.fromkeys(recipes))
    if not keys:
        return {}
    recipe = tuple_(quality_assessments.c.workspace_id, quality_assessments.c.template_id)
    ranked = (
        select(
            quality_assessments.c.workspace_id,
            quality_assessments.c.template_id,
            quality_assessments.c.rolling_score,
            quality_assessments.c.version,
            func.row_number()
            .over(
                partition_by=(quality_assessments.c.workspace_id, quality_assessments.c.template_id),
                order_by=quality_assessments.c.version.desc(),
            )
            .label("rank"),
            func.count()
            .over(partition_by=(quality_assessments.c.workspace_id, quality_assessments.c.template_id))
            .label("runs"),
        )
        .where(recipe.in_(keys))
        .subquery()
    )
    rows = await session.execute(select(ranked).where(ranked.c.rank <= max(trend_points, 1)).order_by(ranked.c.version))
    runs: dict[RecipeKey, int] = {}
    trends: dict[RecipeKey, list[float]] = {}
    for row in rows:
        key = (row.workspace_id, row.template_id)
        runs[key] = int(row.runs)
        trends.setdefault(key, []).append(float(row.rolling_score))
    scores = await session.execute(
        select(quality_scores.c.workspace_id, quality_scores.c.template_id, quality_scores.c.score).where(
            tuple_(quality_scores.c.workspace_id, quality_scores.c.template_id).in_(keys)
        )
    )
    latest = {(r.workspace_id, r.template_id): float(r.score) for r in scores}
    return {
        key: QualityStanding(
            score=latest.get(key, trends[key][-1] if key in trends else None),
            assessed_runs=runs.get(key, 0),
            trend=tuple(trends.get(key, [])[-trend_points:] if trend_points > 0 else ()),
        )
        for key in keys
    }


async def quality_standing(
    session: AsyncSession, workspace_id: str, template_id: str, trend_points: int
) -> QualityStanding:
    key = (workspace_id, template_id)
    return (await quality_standings(session, [key], trend_points))[key]

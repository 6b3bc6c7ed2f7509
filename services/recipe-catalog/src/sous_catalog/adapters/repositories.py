"""Queries over the read models, always scoped to one workspace."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.adapters.tables import agents, executions, recipes
from sous_catalog.domain.recipe import popularity
from sous_service.ordering import by_name

SortKey = Literal["popularity", "created_at", "use_count", "average_rating", "name"]
AgentSortKey = Literal["created_at", "name"]
STATUSES = ("completed", "failed", "running", "pending", "cancelled")
# What a use counted through the API is computed from (with the row's id).
STATISTICS: tuple[ColumnElement[Any], ...] = (
    recipes.c.id,
    recipes.c.use_count,
    recipes.c.last_used_at,
    recipes.c.finished_count,
    recipes.c.success_count,
    recipes.c.success_rate,
    recipes.c.quality_score,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def like_pattern(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def recipe_public(row: Row[Any]) -> dict[str, Any]:
    doc = dict(row.doc)
    doc.update(
        quality_score=row.quality_score,
        learning_data=row.learning_data or {},
        use_count=row.use_count,
        success_rate=row.success_rate,
        popularity=row.popularity,
        average_rating=row.average_rating,
        install_count=row.install_count,
        last_used_at=_iso(row.last_used_at),
    )
    return doc


def agent_public(row: Row[Any]) -> dict[str, Any]:
    return {**row.doc, "number": row.number, "metrics": row.metrics or {}}


@dataclass(frozen=True)
class RecipeQuery:
    workspace_id: str
    is_public: bool | None = True
    is_featured: bool | None = None
    search: str | None = None
    sort_by: SortKey = "popularity"
    skip: int = 0
    limit: int = 50


_ORDER: dict[str, tuple[ColumnElement[Any], ...]] = {
    "popularity": (recipes.c.popularity.desc(), recipes.c.id),
    "created_at": (recipes.c.created_at.desc(), recipes.c.id),
    "use_count": (recipes.c.use_count.desc(), recipes.c.id),
    "average_rating": (recipes.c.average_rating.desc(), recipes.c.id),
    "name": by_name(recipes.c.name, recipes.c.id),
}


class RecipeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, template_id: str, *, lock: bool = False) -> Row[Any] | None:
        query = select(recipes).where(recipes.c.workspace_id == workspace_id, recipes.c.template_id == template_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).first()

    async def names(self, workspace_id: str) -> list[str]:
        result = await self.session.execute(select(recipes.c.name).where(recipes.c.workspace_id == workspace_id))
        return list(result.scalars())

    async def page(self, q: RecipeQuery) -> tuple[list[dict[str, Any]], int]:
        conditions: list[ColumnElement[bool]] = [recipes.c.workspace_id == q.workspace_id]
        if q.is_public is not None:
            conditions.append(recipes.c.is_public == q.is_public)
        if q.is_featured is not None:
            conditions.append(recipes.c.is_featured == q.is_featured)
        if q.search:
            conditions.append(recipes.c.search_text.like(like_pattern(q.search), escape="\\"))
        where = and_(*conditions)
        total = (await self.session.execute(select(func.count()).select_from(recipes).where(where))).scalar_one()
        rows = await self.session.execute(
            select(recipes).where(where).order_by(*_ORDER[q.sort_by]).offset(q.skip).limit(q.limit)
        )
        return [recipe_public(r) for r in rows], int(total)

    async def featured(self, workspace_id: str, limit: int) -> tuple[list[dict[str, Any]], int]:
        where = and_(recipes.c.workspace_id == workspace_id, recipes.c.is_featured.is_(True))
        total = (await self.session.execute(select(func.count()).select_from(recipes).where(where))).scalar_one()
        rows = await self.session.execute(select(recipes).where(where).order_by(*_ORDER["popularity"]).limit(limit))
        return [recipe_public(r) for r in rows], int(total)

    async def categories(self, workspace_id: str) -> list[tuple[str, int]]:
        count = func.count().label("n")
        rows = await self.session.execute(
            select(recipes.c.category, count)
            .where(recipes.c.workspace_id == workspace_id)
            .group_by(recipes.c.category)
            .order_by(count.desc(), *by_name(recipes.c.category))
        )
        return [(r.category, int(r.n)) for r in rows]

    async def referencing_agent(self, workspace_id: str, agent_id: str) -> list[str]:
        rows = await self.session.execute(
            select(recipes.c.template_id)
            .where(recipes.c.workspace_id == workspace_id, recipes.c.agent_ids.contains([agent_id]))
            .order_by(recipes.c.template_id)
        )
        return list(rows.scalars())

    # ------------------------------------------------------------ statistics (a use counted by the API)

    async def _locked_statistics(self, workspace_id: str, template_id: str) -> Row[Any] | None:
        """The row's statistics, locked; its documents (the snapshot, learning_data) are neither read nor decoded."""
        query = (
            select(*STATISTICS)
            .where(recipes.c.workspace_id == workspace_id, recipes.c.template_id == template_id)
            .with_for_update()
        )
        return (await self.session.execute(query)).first()

    async def record_use(self, workspace_id: str, template_id: str, at: datetime) -> Row[Any] | None:
        """Count one use (an API call); the updated row, documents too, or None when the recipe is unknown.

        Uses from consumed events are counted by sous_catalog.adapters.statistics.
        """
        row = await self._locked_statistics(workspace_id, template_id)
        if row is None:
            return None
        last = at if row.last_used_at is None or at > row.last_used_at else row.last_used_at
        use_count = row.use_count + 1
        statement = (
            update(recipes)
            .where(recipes.c.id == row.id)
            .values(
                use_count=use_count,
                last_used_at=last,
                popularity=popularity(use_count, row.success_rate, row.quality_score),
            )
            .returning(*recipes.c)
        )
        updated = (await self.session.execute(statement)).first()
        assert updated is not None  # the row is locked
        return updated

    async def dashboard(self, workspace_id: str) -> dict[str, Any]:
        overview = (
            await self.session.execute(
                select(
                    func.count().label("total"),
                    func.avg(recipes.c.quality_score).label("quality"),
                    func.avg(recipes.c.success_rate).filter(recipes.c.finished_count > 0).label("success"),
                ).where(recipes.c.workspace_id == workspace_id)
            )
        ).one()
        statuses = await self.session.execute(
            select(executions.c.status, func.count().label("n"))
            .where(executions.c.workspace_id == workspace_id)
            .group_by(executions.c.status)
        )
        breakdown = dict.fromkeys(STATUSES, 0)
        for status, n in statuses:
            if status in breakdown:
                breakdown[status] = int(n)
        top = await self.session.execute(
            select(recipes)
            .where(recipes.c.workspace_id == workspace_id)
            .order_by(recipes.c.popularity.desc(), recipes.c.use_count.desc(), recipes.c.id)
            .limit(10)
        )
        return {
            "overview": {
                "total_recipes": int(overview.total),
                "total_executions": sum(breakdown.values()),
                "avg_quality_score": None if overview.quality is None else round(float(overview.quality), 4),
                "avg_success_rate": None if overview.success is None else round(float(overview.success), 4),
            },
            "status_breakdown": breakdown,
            "top_recipes": [
                {
                    "template_id": r.template_id,
                    "name": r.name,
                    "use_count": r.use_count,
                    "success_rate": r.success_rate,
                    "popularity": r.popularity,
                    "quality_score": r.quality_score,
                }
                for r in top
            ],
        }


class AgentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, agent_id: str, *, lock: bool = False) -> Row[Any] | None:
        query = select(agents).where(agents.c.workspace_id == workspace_id, agents.c.id == agent_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).first()

    async def by_ids(
        self, workspace_id: str, ids: Collection[str], *, share_lock: bool = False
    ) -> dict[str, dict[str, Any]]:
        """One query for all the agents a recipe references (FOR SHARE while a recipe is written)."""
        if not ids:
            return {}
        query = select(agents).where(agents.c.workspace_id == workspace_id, agents.c.id.in_(list(ids)))
        if share_lock:
            query = query.with_for_update(read=True)
        return {row.id: agent_public(row) for row in await self.session.execute(query)}

    async def by_names(self, workspace_id: str, names: Sequence[str]) -> dict[str, str]:
        if not names:
            return {}
        rows = await self.session.execute(
            select(agents.c.name, agents.c.id)
            .where(agents.c.workspace_id == workspace_id, agents.c.name.in_(list(names)))
            .order_by(agents.c.created_at, agents.c.id)
        )
        out: dict[str, str] = {}
        for name, agent_id in rows:
            out.setdefault(name, agent_id)
        return out

    async def page(
        self, workspace_id: str, *, search: str | None, skip: int, limit: int, sort_by: AgentSortKey = "created_at"
    ) -> tuple[list[dict[str, Any]], int]:
        conditions: list[ColumnElement[bool]] = [agents.c.workspace_id == workspace_id]
        if search:
            conditions.append(agents.c.search_text.like(like_pattern(search), escape="\\"))
        where = and_(*conditions)
        total = (await self.session.execute(select(func.count()).select_from(agents).where(where))).scalar_one()
        order = by_name(agents.c.name, agents.c.id) if sort_by == "name" else (agents.c.created_at.desc(), agents.c.id)
        rows = await self.session.execute(select(agents).where(where).order_by(*order).offset(skip).limit(limit))
        return [agent_public(r) for r in rows], int(total)

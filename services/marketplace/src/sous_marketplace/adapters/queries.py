"""Reads of the listings read model for the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, String, and_, cast, func, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_marketplace.adapters.replicas import quality_standings
from sous_marketplace.adapters.tables import creator_approvals, listings, quality_scores
from sous_marketplace.domain.quality_gate import QualityGate, QualityStanding
from sous_marketplace.domain.snapshot import public_agent, public_recipe
from sous_service.ordering import by_name

SortBy = Literal["newest", "installs", "quality", "name"]

_score = quality_scores.c.score.label("quality_score")
_joined = listings.outerjoin(
    quality_scores,
    and_(
        quality_scores.c.workspace_id == listings.c.source_workspace_id,
        quality_scores.c.template_id == listings.c.recipe_id,
    ),
)


def _select() -> Select[Any]:
    return select(listings, _score).select_from(_joined)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _without_agent_ids(recipe: dict[str, Any], agents: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    """Steps name their agent instead of the source workspace's agent id (only installs need the ids)."""
    names = {a.get("id"): a.get("name") for a in agents if isinstance(a, dict)}
    steps = [
        {**{k: v for k, v in step.items() if k != "agent_id"}, "agent_name": names.get(step.get("agent_id"))}
        if isinstance(step, dict)
        else step
        for step in recipe.get("steps") or []
    ]
    # Scrubbed again on the way out: listings stored before a rule existed obey it too.
    public_agents = [{k: v for k, v in public_agent(a).items() if k != "id"} for a in agents if isinstance(a, dict)]
    return {**recipe, "steps": steps}, public_agents


def public_view(row: RowMapping) -> dict[str, Any]:
    """A listing as anyone may see it once approved: no source workspace, nothing private."""
    recipe, agents = _without_agent_ids(public_recipe(dict(row["recipe"])), list(row["agents"]))
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "category": row["category"],
        "icon": row["icon"],
        "tags": row["tags"],
        "creator_id": row["creator_id"],
        "status": row["status"],
        "auto_approved": row["auto_approved"],
        "install_count": row["install_count"],
        "quality_score": row["quality_score"],
        "featured": row["featured"],
        "flagged": row["flagged"],
        "recipe": recipe,
        "agents": agents,
        "submitted_at": _iso(row["submitted_at"]),
        "published_at": _iso(row["decided_at"]) if row["status"] == "approved" else None,
    }


def submission_view(row: RowMapping) -> dict[str, Any]:
    """A listing as its creator (or a moderator) sees it: status, reason and the source recipe."""
    return {
        **public_view(row),
        "recipe": row["recipe"],
        "agents": row["agents"],
        "recipe_id": row["recipe_id"],
        "source_workspace_id": row["source_workspace_id"],
        "rejection_reason": row["rejection_reason"],
        "flag_reason": row["flag_reason"],
        "flagged_at": _iso(row["flagged_at"]),
        "decided_at": _iso(row["decided_at"]),
    }


def quality_fields(standing: QualityStanding, gate: QualityGate) -> dict[str, Any]:
    """What a listing shows of its recipe's quality: assessed runs, score trend (oldest first) and the gate."""
    return {
        "assessed_runs": standing.assessed_runs,
        "score_trend": list(standing.trend),
        "quality_gate": gate.as_dict(standing),
    }


async def listing_standings(
    session: AsyncSession, rows: list[RowMapping], trend_points: int
) -> dict[str, QualityStanding]:
    """Listing id -> its source recipe's quality standing, for a page of listings in one query."""
    by_recipe = await quality_standings(
        session, [(r["source_workspace_id"], r["recipe_id"]) for r in rows], trend_points
    )
    return {r["id"]: by_recipe[(r["source_workspace_id"], r["recipe_id"])] for r in rows}


@dataclass
class Page:
    items: list[RowMapping]
    total: int


async def _page(session: AsyncSession, query: Select[Any], skip: int, limit: int) -> Page:
    total = (await session.execute(select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one()
    rows = (await session.execute(query.offset(skip).limit(limit))).mappings().all()
    return Page(items=list(rows), total=int(total))


async def browse(
    session: AsyncSession,
    *,
    category: str | None,
    search: str | None,
    sort_by: SortBy,
    skip: int,
    limit: int,
    featured: bool | None = None,
) -> Page:
    query = _select().where(listings.c.status == "approved")
    if featured is not None:
        query = query.where(listings.c.featured.is_(featured))
    if category:
        query = query.where(func.lower(listings.c.category) == category.strip().lower())
    if search and search.strip():
        pattern = "%" + search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                listings.c.name.ilike(pattern, escape="\\"),
                listings.c.description.ilike(pattern, escape="\\"),
                listings.c.category.ilike(pattern, escape="\\"),
                cast(listings.c.tags, String).ilike(pattern, escape="\\"),
            )
        )
    if sort_by == "installs":
        query = query.order_by(listings.c.install_count.desc(), listings.c.decided_at.desc(), listings.c.id.desc())
    elif sort_by == "name":
        query = query.order_by(*by_name(listings.c.name, listings.c.id))
    elif sort_by == "quality":
        query = query.order_by(_score.desc().nulls_last(), listings.c.decided_at.desc(), listings.c.id.desc())
    else:
        query = query.order_by(listings.c.decided_at.desc(), listings.c.id.desc())
    return await _page(session, query, skip, limit)


async def get_listing(session: AsyncSession, listing_id: str) -> RowMapping | None:
    row: RowMapping | None = (await session.execute(_select().where(listings.c.id == listing_id))).mappings().first()
    return row


QueueKind = Literal["all", "pending", "flagged"]


async def queue(session: AsyncSession, *, skip: int, limit: int, kind: QueueKind = "all") -> Page:
    """What needs a moderator: pending listings (oldest first), then approved listings flagged for quality."""
    pending = listings.c.status == "pending"
    flagged = and_(listings.c.status == "approved", listings.c.flagged.is_(True))
    where = {"pending": pending, "flagged": flagged, "all": or_(pending, flagged)}[kind]
    query = _select().where(where).order_by(listings.c.flagged, listings.c.submitted_at, listings.c.id)
    return await _page(session, query, skip, limit)


async def approved_listing_ids(session: AsyncSession, workspace_id: str, template_id: str) -> list[str]:
    rows = await session.execute(
        select(listings.c.id)
        .where(
            listings.c.source_workspace_id == workspace_id,
            listings.c.recipe_id == template_id,
            listings.c.status == "approved",
        )
        .order_by(listings.c.id)
    )
    return list(rows.scalars())


async def submissions(
    session: AsyncSession, *, creator_id: str, workspace_id: str, status: str | None, skip: int, limit: int
) -> Page:
    query = _select().where(listings.c.creator_id == creator_id, listings.c.source_workspace_id == workspace_id)
    if status:
        query = query.where(listings.c.status == status)
    return await _page(session, query.order_by(listings.c.submitted_at.desc(), listings.c.id.desc()), skip, limit)


async def approved_count(session: AsyncSession, creator_id: str) -> int:
    result = await session.execute(
        select(func.count()).select_from(creator_approvals).where(creator_approvals.c.creator_id == creator_id)
    )
    return int(result.scalar_one())

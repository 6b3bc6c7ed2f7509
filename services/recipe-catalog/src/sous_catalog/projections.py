"""Projections of Recipe and Agent events into the read-model tables.

`apply` runs in the appending transaction (live) and, unchanged, during `rebuild`. It writes only the
columns the catalog owns; statistics columns come from consumed events and survive a rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_catalog.adapters import versions
from sous_catalog.adapters.tables import agents, recipes
from sous_catalog.domain import agent as agent_domain
from sous_catalog.domain import recipe as recipe_domain
from sous_catalog.domain.validation import step_agent_ids
from sous_events import events as ev
from sous_events.envelope import Envelope
from sous_events.registry import payload_of
from sous_events.store import EventStore

AGGREGATE_TYPES = (recipe_domain.AGGREGATE, agent_domain.AGGREGATE, versions.VERSION_AGGREGATE)


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def search_text(*parts: Any) -> str:
    return " ".join(str(p or "") for p in parts).lower()


def recipe_columns(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    doc = recipe_domain.owned_view(snapshot)
    return {
        "workspace_id": doc["workspace_id"],
        "template_id": doc["template_id"],
        "name": doc["name"],
        "description": doc["description"] or "",
        "search_text": search_text(doc["name"], doc["description"]),
        "category": recipe_domain.category_of(doc["tags"]),
        "tags": doc["tags"] or [],
        "is_public": bool(doc["is_public"]),
        "is_featured": bool(doc["is_featured"]),
        "is_system": bool(doc["is_system"]),
        "created_by": doc["created_by"] or "",
        "agent_ids": step_agent_ids(doc["steps"]),
        "doc": doc,
        "created_at": _time(doc["created_at"]),
        "updated_at": _time(doc["updated_at"]),
        "revision": int(doc["revision"]),
    }


def agent_columns(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {k: snapshot.get(k) for k in agent_domain.OWNED_FIELDS}
    return {
        "workspace_id": doc["workspace_id"],
        "number": doc["number"],
        "name": doc["name"],
        "search_text": search_text(doc["name"], doc["description"]),
        "status": doc["status"],
        "doc": doc,
        "created_at": _time(doc["created_at"]),
        "updated_at": _time(doc["updated_at"]),
        "revision": int(doc["revision"]),
    }


async def apply(session: AsyncSession, envelope: Envelope) -> None:
    payload = payload_of(envelope)
    if isinstance(payload, ev.RecipeCreated):
        values = recipe_columns(payload.recipe.as_dict())
        await session.execute(insert(recipes).values(id=envelope.aggregate_id, **values))
    elif isinstance(payload, ev.RecipeUpdated):
        values = recipe_columns(payload.recipe.as_dict())
        await session.execute(update(recipes).where(recipes.c.id == envelope.aggregate_id).values(**values))
    elif isinstance(payload, ev.RecipeDeleted):
        await session.execute(delete(recipes).where(recipes.c.id == envelope.aggregate_id))
    elif envelope.event_type == "RecipeVersionProposed" or envelope.event_type in versions.PROMOTION_EVENTS:
        await versions.apply(session, envelope)
    elif isinstance(payload, ev.AgentRegistered):
        await session.execute(insert(agents).values(id=envelope.aggregate_id, **agent_columns(payload.agent.as_dict())))
    elif isinstance(payload, ev.AgentUpdated):
        values = agent_columns(payload.agent.as_dict())
        await session.execute(update(agents).where(agents.c.id == envelope.aggregate_id).values(**values))
    elif isinstance(payload, ev.AgentRemoved):
        await session.execute(delete(agents).where(agents.c.id == envelope.aggregate_id))


_RECIPE_STATS = (
    "quality_score",
    "learning_data",
    "use_count",
    "finished_count",
    "success_count",
    "success_rate",
    "popularity",
    "average_rating",
    "install_count",
    "last_used_at",
)


async def rebuild_read_models(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Empty the recipe and agent read models and replay the catalog's event store into them.

    Statistics from other services' events are set aside first and put back on the rebuilt rows.
    One transaction: readers see the old read model until the new one is complete.
    """
    store = EventStore()
    count = 0
    stats = ", ".join(_RECIPE_STATS)
    async with sessions() as session, session.begin():
        await session.execute(text("LOCK TABLE recipes, agents IN EXCLUSIVE MODE"))
        await session.execute(
            text(f"CREATE TEMP TABLE kept_recipe_stats ON COMMIT DROP AS SELECT id, {stats} FROM recipes")
        )
        await session.execute(
            text("CREATE TEMP TABLE kept_agent_metrics ON COMMIT DROP AS SELECT id, metrics, number FROM agents")
        )
        await versions.reset(session)
        await session.execute(delete(recipes))
        await session.execute(delete(agents))
        async for envelope in store.replay(sessions, aggregate_types=AGGREGATE_TYPES):
            await apply(session, envelope)
            count += 1
        assignments = ", ".join(f"{c} = k.{c}" for c in _RECIPE_STATS)
        await session.execute(text(f"UPDATE recipes r SET {assignments} FROM kept_recipe_stats k WHERE r.id = k.id"))
        await session.execute(
            # Agents registered before numbers existed have none in their events: they keep the migration's.
            text(
                "UPDATE agents a SET metrics = k.metrics, number = COALESCE(a.number, k.number), "
                "doc = CASE WHEN a.number IS NULL AND k.number IS NOT NULL "
                "THEN jsonb_set(a.doc, '{number}', to_jsonb(k.number)) ELSE a.doc END "
                "FROM kept_agent_metrics k WHERE a.id = k.id"
            )
        )
    return count

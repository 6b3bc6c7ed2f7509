"""A recipe's revisions, read from its event stream (a query: nothing is written)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.adapters.repositories import RecipeRepository
from sous_catalog.domain import recipe as recipe_domain
from sous_events import events as ev
from sous_events.registry import payload_of
from sous_events.store import EventStore
from sous_service.domain_errors import NotFound

# Events that carry a recipe snapshot and the fields it changed (a proposed version is a revision too).
ProposedOrUpdated = (ev.RecipeUpdated, ev.RecipeVersionProposed)


async def recipe_history(
    session: AsyncSession, store: EventStore, workspace_id: str, template_id: str, revision: int | None = None
) -> dict[str, Any]:
    """Every revision (event type, changed fields, actor, time); with `revision`, the recipe as it was then."""
    row = await RecipeRepository(session).get(workspace_id, template_id)
    if row is None:
        raise NotFound("recipe", template_id)
    events = await store.load(session, recipe_domain.AGGREGATE, row.id)
    entries = []
    as_of: dict[str, Any] | None = None
    for event in events:
        if event.event_type == "RecipeCreated":
            changed = [f for f in recipe_domain.OWNED_FIELDS if f not in ("revision",)]
        else:
            payload = payload_of(event)
            changed = list(payload.changed_fields) if isinstance(payload, ProposedOrUpdated) else []
        entries.append(
            {
                "revision": event.aggregate_version,
                "event_type": event.event_type,
                "event_id": event.event_id,
                "changed_fields": changed,
                "actor": event.actor.model_dump(),
                "occurred_at": event.occurred_at.isoformat(),
            }
        )
        if revision is not None and event.aggregate_version == revision:
            payload = payload_of(event)
            if isinstance(payload, (ev.RecipeCreated, *ProposedOrUpdated)):
                as_of = payload.recipe.as_dict()
    if revision is not None and as_of is None:
        raise NotFound("recipe", template_id, detail=f"recipe '{template_id}' has no revision {revision}")
    return {"template_id": template_id, "recipe_id": row.id, "revisions": entries, "recipe": as_of}

"""The listings read model, kept by the same function live (in the appending transaction) and on rebuild.

Every statement is idempotent per event: applying an event twice (a replay, a duplicate) changes nothing
the second time. Approvals are a set of (creator, listing) rows and installs a set of install ids, so
trust counts and install counts cannot be counted twice.
"""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.envelope import Envelope
from sous_events.events import (
    ListingApproved,
    ListingFlagCleared,
    ListingFlagged,
    ListingRejected,
    ListingSubmitted,
    ListingWithdrawn,
    RecipeInstalled,
)
from sous_events.registry import payload_of
from sous_marketplace.adapters.tables import creator_approvals, installs, listings

AGGREGATE_TYPES = ("Listing", "Install")


def name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


async def apply_event(session: AsyncSession, event: Envelope) -> None:
    payload = payload_of(event)
    if isinstance(payload, ListingSubmitted):
        status = "approved" if payload.auto_approved else "pending"
        recipe = payload.recipe
        await session.execute(
            pg_insert(listings)
            .values(
                id=payload.listing_id,
                name=payload.name,
                name_key=name_key(payload.name),
                description=recipe.description if recipe is not None else "",
                category=payload.category,
                icon=payload.icon,
                tags=list(recipe.tags) if recipe is not None else [],
                creator_id=payload.creator_id,
                source_workspace_id=payload.source_workspace_id,
                recipe_id=payload.template_id,
                recipe=recipe.as_dict() if recipe is not None else {},
                agents=[agent.as_dict() for agent in payload.agents],
                status=status,
                featured=payload.auto_approved,
                auto_approved=payload.auto_approved,
                submitted_at=event.occurred_at,
                decided_at=event.occurred_at if payload.auto_approved else None,
                version=event.aggregate_version,
            )
            .on_conflict_do_nothing(index_elements=[listings.c.id])
        )
        if payload.auto_approved:
            await _count_approval(session, payload.creator_id, payload.listing_id, event)
    elif isinstance(payload, ListingApproved):
        await session.execute(
            update(listings)
            .where(listings.c.id == payload.listing_id, listings.c.version < event.aggregate_version)
            .values(
                status="approved",
                featured=True,
                moderator_id=payload.moderator_id,
                decided_at=event.occurred_at,
                version=event.aggregate_version,
            )
        )
        await _count_approval(session, payload.creator_id, payload.listing_id, event)
    elif isinstance(payload, ListingRejected):
        await session.execute(
            update(listings)
            .where(listings.c.id == payload.listing_id, listings.c.version < event.aggregate_version)
            .values(
                status="rejected",
                rejection_reason=payload.reason,
                moderator_id=payload.moderator_id,
                decided_at=event.occurred_at,
                version=event.aggregate_version,
            )
        )
    elif isinstance(payload, ListingWithdrawn):
        await session.execute(
            update(listings)
            .where(listings.c.id == payload.listing_id, listings.c.version < event.aggregate_version)
            .values(status="withdrawn", featured=False, decided_at=event.occurred_at, version=event.aggregate_version)
        )
    elif isinstance(payload, ListingFlagged):
        await session.execute(
            update(listings)
            .where(listings.c.id == payload.listing_id, listings.c.version < event.aggregate_version)
            .values(
                flagged=True,
                featured=False,
                flag_reason=payload.reason,
                flagged_at=event.occurred_at,
                version=event.aggregate_version,
            )
        )
    elif isinstance(payload, ListingFlagCleared):
        await session.execute(
            update(listings)
            .where(listings.c.id == payload.listing_id, listings.c.version < event.aggregate_version)
            .values(flagged=False, featured=True, flag_reason=None, version=event.aggregate_version)
        )
    elif isinstance(payload, RecipeInstalled):
        inserted = await session.execute(
            pg_insert(installs)
            .values(
                id=payload.install_id,
                listing_id=payload.listing_id,
                target_workspace_id=payload.target_workspace_id,
                template_id=payload.recipe.template_id,
                installed_by=payload.installed_by,
                installed_at=event.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=[installs.c.id])
            .returning(installs.c.id)
        )
        if inserted.first() is not None:
            await session.execute(
                update(listings)
                .where(listings.c.id == payload.listing_id)
                .values(install_count=listings.c.install_count + 1)
            )


async def _count_approval(session: AsyncSession, creator_id: str, listing_id: str, event: Envelope) -> None:
    if not creator_id:
        return
    await session.execute(
        pg_insert(creator_approvals)
        .values(creator_id=creator_id, listing_id=listing_id, approved_at=event.occurred_at)
        .on_conflict_do_nothing()
    )


async def reset(session: AsyncSession) -> None:
    """Empty the read models the event store rebuilds (the replicas are not in this store)."""
    for table in (installs, creator_approvals, listings):
        await session.execute(delete(table))

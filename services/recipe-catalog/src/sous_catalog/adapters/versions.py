"""Proposed recipe versions: their projection (live and on rebuild) and their reads.

A proposal is an event of the recipe's own stream, so it moves the recipe's `revision` (the stream's version)
without changing anything else of the recipe; its promotion lives in the RecipeVersion stream
`<recipe id>:<revision>` (started replays, then promoted or refused with the report).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.adapters.tables import recipe_versions, recipes
from sous_events import events as ev
from sous_events.envelope import Envelope
from sous_events.registry import payload_of

VERSION_AGGREGATE = "RecipeVersion"
PROMOTION_EVENTS = ("RecipePromotionStarted", "RecipeVersionPromoted", "RecipePromotionRefused")


def version_stream_id(recipe_id: str, revision: int) -> str:
    return f"{recipe_id}:{revision}"


async def apply(session: AsyncSession, envelope: Envelope) -> None:
    payload = payload_of(envelope)
    if isinstance(payload, ev.RecipeVersionProposed):
        recipe = payload.recipe
        revision = envelope.aggregate_version
        await session.execute(
            pg_insert(recipe_versions)
            .values(
                recipe_id=envelope.aggregate_id,
                revision=revision,
                workspace_id=recipe.workspace_id or envelope.workspace_id,
                template_id=recipe.template_id,
                status="proposed",
                base_revision=payload.base_revision,
                changed_fields=list(payload.changed_fields),
                recipe=recipe.as_dict(),
                proposed_by=envelope.actor.user_id,
                proposed_at=envelope.occurred_at,
            )
            .on_conflict_do_nothing()
        )
        # The recipe stays as it is; only its revision (the stream's version) moves on.
        await session.execute(
            update(recipes)
            .where(recipes.c.id == envelope.aggregate_id, recipes.c.revision < revision)
            .values(revision=revision, doc=recipes.c.doc.op("||")(func.jsonb_build_object("revision", revision)))
        )
    elif isinstance(payload, (ev.RecipePromotionStarted, ev.RecipeVersionPromoted, ev.RecipePromotionRefused)):
        key = (recipe_versions.c.recipe_id == payload.recipe_id) & (recipe_versions.c.revision == payload.revision)
        values: dict[str, Any] = {"version": envelope.aggregate_version}
        if isinstance(payload, ev.RecipePromotionStarted):
            replays = [replay.model_dump(mode="json") for replay in payload.replays]
            values |= {"status": "replaying", "replays": replays, "report": None}
        else:
            decided = "promoted" if isinstance(payload, ev.RecipeVersionPromoted) else "refused"
            report = payload.report.model_dump(mode="json")
            values |= {"status": decided, "report": report, "decided_at": envelope.occurred_at}
        await session.execute(
            update(recipe_versions).where(key, recipe_versions.c.version < envelope.aggregate_version).values(**values)
        )


async def reset(session: AsyncSession) -> None:
    await session.execute(delete(recipe_versions))


def version_view(row: RowMapping) -> dict[str, Any]:
    return {
        "revision": row["revision"],
        "template_id": row["template_id"],
        "status": row["status"],
        "base_revision": row["base_revision"],
        "changed_fields": row["changed_fields"],
        "recipe": row["recipe"],
        "proposed_by": row["proposed_by"],
        "proposed_at": row["proposed_at"].isoformat(),
        "replays": row["replays"],
        "report": row["report"],
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] is not None else None,
        "promotion_version": row["version"],
    }


async def get_version(session: AsyncSession, recipe_id: str, revision: int) -> RowMapping | None:
    row: RowMapping | None = (
        (
            await session.execute(
                select(recipe_versions).where(
                    recipe_versions.c.recipe_id == recipe_id, recipe_versions.c.revision == revision
                )
            )
        )
        .mappings()
        .first()
    )
    return row


async def list_versions(session: AsyncSession, recipe_id: str) -> list[RowMapping]:
    rows = await session.execute(
        select(recipe_versions)
        .where(recipe_versions.c.recipe_id == recipe_id)
        .order_by(recipe_versions.c.revision.desc())
    )
    return list(rows.mappings().all())

"""The recipes' current quality scores: owned by the quality service, copied here from its events.

Executions are listed with their recipe's current rolling score. The copy follows QualityAssessed events
(newest stream version wins); a listing asks the quality service first, so a score assessed a moment ago
shows at once, and uses the copy when the quality service cannot answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import driver
from sous_events.envelope import Envelope
from sous_events.events import QualityAssessed
from sous_executor.adapters.tables import recipe_quality_scores
from sous_service.owner_reads import OwnerReads
from sous_service.scopes import RECIPES_READ

# SQL text, not an expression built per event: a connection prepares it once and each event only binds.
_COPY_SCORE = (
    "INSERT INTO recipe_quality_scores (workspace_id, template_id, score, version) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (workspace_id, template_id) DO UPDATE SET score = excluded.score, version = excluded.version "
    "WHERE recipe_quality_scores.version < excluded.version"
)


async def on_quality_assessed(session: AsyncSession, envelope: Envelope, payload: QualityAssessed) -> None:
    if not payload.counted:
        return  # the recipe's rolling score did not move
    await driver.execute(
        session,
        _COPY_SCORE,
        envelope.workspace_id,
        payload.template_id,
        payload.rolling_score,
        envelope.aggregate_version,
    )


async def copied_score(session: AsyncSession, workspace_id: str, template_id: str) -> float | None:
    row = (
        await session.execute(
            select(recipe_quality_scores.c.score).where(
                recipe_quality_scores.c.workspace_id == workspace_id,
                recipe_quality_scores.c.template_id == template_id,
            )
        )
    ).first()
    return float(row.score) if row is not None and row.score is not None else None


class QualityScores:
    """The owner's current score, or the copy's when the owner cannot answer."""

    def __init__(self, owner: OwnerReads) -> None:
        self.owner = owner

    async def current(
        self, session: AsyncSession, workspace_id: str, template_id: str, recipe: dict[str, Any] | None
    ) -> float | None:
        path = f"/api/workflow-recipes/{quote(template_id, safe='')}/suggestions"
        answer = await self.owner.get(workspace_id, RECIPES_READ, path)
        if answer is not None and answer.status in (200, 404):
            score = answer.body.get("quality_score") if answer.status == 200 else None
            return float(score) if isinstance(score, int | float) else None
        copied = await copied_score(session, workspace_id, template_id)
        return copied if copied is not None else (recipe or {}).get("quality_score")

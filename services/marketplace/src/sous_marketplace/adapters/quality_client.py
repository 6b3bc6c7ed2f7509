"""Read-through to the quality service when the replica of a recipe's quality may lag behind it.

A moderator who approves right after an assessment must not be refused on a replica that has not seen
that assessment yet: the gate asks the quality service itself (its history of the recipe, signed as the
listing's source workspace) whenever the replica alone would refuse.
"""

from __future__ import annotations

import logging

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from sous_marketplace.domain.quality_gate import QualityStanding
from sous_service.owner_reads import OwnerReads
from sous_service.scopes import RECIPES_READ

logger = logging.getLogger("sous.marketplace.quality")


class _HistoryPoint(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rolling_score: float


class _History(BaseModel):
    """The part of quality's `GET /api/workflow-recipes/{id}/quality/history` the gate reads."""

    model_config = ConfigDict(extra="ignore")

    quality_score: float | None
    assessment_count: int
    points: list[_HistoryPoint]


class QualityClient:
    def __init__(
        self,
        base_url: str,
        internal_secret: str,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.reads = OwnerReads(
            base_url, internal_secret, "quality", reader="marketplace", timeout_s=timeout_s, transport=transport
        )

    async def standing(self, workspace_id: str, template_id: str, trend_points: int) -> QualityStanding | None:
        """The recipe's standing as quality knows it now; None when quality cannot tell (the replica stands)."""
        path = f"/api/workflow-recipes/{template_id}/quality/history?limit={max(trend_points, 1)}"
        answer = await self.reads.get(workspace_id, RECIPES_READ, path)
        if answer is None or answer.status != 200:
            return None
        try:
            history = _History.model_validate(answer.body)
        except ValidationError as exc:
            logger.warning("quality read-through for %s answered an unexpected body: %s", template_id, exc)
            return None
        trend = tuple(p.rolling_score for p in history.points)
        return QualityStanding(
            score=history.quality_score,
            assessed_runs=history.assessment_count,
            trend=trend[-trend_points:] if trend_points > 0 else (),
        )

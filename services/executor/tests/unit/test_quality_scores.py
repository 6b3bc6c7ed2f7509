"""Executions are listed with the recipe's current score: the quality service's answer first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sous_executor.adapters.quality_scores import QualityScores
from sous_service.owner_reads import OwnerReads

pytestmark = pytest.mark.unit


def scores(status: int, body: dict[str, Any]) -> QualityScores:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/workflow-recipes/digest/suggestions"
        return httpx.Response(status, json=body)

    owner = OwnerReads("http://quality", "s", "quality", reader="executor", transport=httpx.MockTransport(answer))
    return QualityScores(owner)


async def test_the_quality_services_score_wins_over_the_recipe_copy() -> None:
    stale = {"quality_score": 0.2}
    assert await scores(200, {"quality_score": 0.91}).current(None, "ws", "digest", stale) == 0.91  # type: ignore[arg-type]
    assert await scores(200, {"quality_score": None}).current(None, "ws", "digest", stale) is None  # type: ignore[arg-type]
    assert await scores(404, {"code": "not_found"}).current(None, "ws", "digest", stale) is None  # type: ignore[arg-type]

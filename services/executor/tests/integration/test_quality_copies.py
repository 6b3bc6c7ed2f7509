"""The executor's copies of the quality service's verdicts, written by SQL text, on a real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events import events as ev
from sous_events.contracts import AgentMetricsSnapshot
from sous_events.registry import make_event
from sous_executor.adapters.quality_scores import copied_score, on_quality_assessed
from sous_executor.workflows import consumers
from sous_executor.workflows import repository as repo
from sous_local.testing import unique

pytestmark = pytest.mark.integration


def assessed(ws: str, template_id: str, score: float, version: int):  # type: ignore[no-untyped-def]
    payload = ev.QualityAssessed(
        template_id=template_id,
        execution_id=unique("e"),
        quality_score=score,
        rolling_score=score,
        breakdown={},
        grade="B",
    )
    return make_event(
        payload, producer="quality", workspace_id=ws, aggregate_id=f"{ws}:{template_id}", aggregate_version=version
    ), payload


async def test_scores_metrics_and_signals_keep_the_newest_copy_and_the_first_signal(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ws, template_id, agent_id = unique("ws"), unique("recipe"), unique("agent")
    for score, version in ((0.4, 2), (0.9, 5), (0.1, 3)):  # the late, older verdict loses
        envelope, payload = assessed(ws, template_id, score, version)
        async with sessions() as session, session.begin():
            await on_quality_assessed(session, envelope, payload)
            await consumers.record_quality_signal(session, envelope, payload)
    # A second verdict on the same execution leaves the first signal as it was.
    async with sessions() as session, session.begin():
        again = payload.model_copy(update={"quality_score": 0.0})
        await consumers.record_quality_signal(session, envelope, again)
    for runs, version in ((3, 7), (1, 4)):
        metrics = ev.AgentMetricsUpdated(agent_id=agent_id, metrics=AgentMetricsSnapshot(runs=runs))
        event = make_event(
            metrics, producer="quality", workspace_id=ws, aggregate_id=agent_id, aggregate_version=version
        )
        async with sessions() as session, session.begin():
            await consumers.record_agent_metrics(session, event, metrics)
    async with sessions() as session:
        assert await copied_score(session, ws, template_id) == 0.9
        _, metrics_by_agent = await repo.workspace_agents(session, ws)
        signals = (
            await session.execute(
                text("SELECT kind, payload FROM workflow_quality_signals WHERE recipe_id = :r"), {"r": template_id}
            )
        ).all()
    assert metrics_by_agent[agent_id]["runs"] == 3
    assert len(signals) == 3 and {kind for kind, _ in signals} == {"quality"}
    assert sorted(payload["quality_score"] for _, payload in signals) == [0.1, 0.4, 0.9]

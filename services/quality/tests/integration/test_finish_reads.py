"""A finish writes its run's copy and the learning that follows reads the copy the finish returned: neither the
learning nor the assessment's projection reads the run's copy back. Each projection of the learning's events
(the assessment, the analysis) writes its row and the recipe's quality in one statement."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sous_events import events as ev
from sous_events.contracts.execution import StepResult
from sous_events.events.executor import ExecutionTotals
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_local.testing import statements_sent
from sous_quality import handlers
from sous_quality.entrypoints.consumers import consumer_spec
from sous_service.runtime import batch_then

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def envelope(payload: ev.EventPayload, workspace_id: str, stream: str, version: int) -> Any:
    return make_event(
        payload, producer="test", workspace_id=workspace_id, aggregate_id=stream, aggregate_version=version
    )


async def test_a_finished_run_is_assessed_without_reading_its_copy_back(
    quality: tuple[Any, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = quality
    spec = consumer_spec("quality-test", handlers.unit_of_works(sessions, None))
    assert spec.after_batch is not None
    handle = batch_then(spec.dispatch(), spec.after_batch)
    ws, execution_id, template_id = f"ws-{new_id()}", new_id(), f"t-{new_id()}"
    agent = {"id": "a1", "name": "writer", "model_config": {"provider": "offline", "model_id": "gpt-4o-mini"}}
    recipe = {"template_id": template_id, "revision": 3, "steps": [{"step_id": "s1", "order": 1, "agent_id": "a1"}]}
    completed = ev.StepCompleted(execution_id=execution_id, step_id="s1", order=1, agent_id="a1", output="done")
    finished = ev.ExecutionFinished(
        execution_id=execution_id,
        template_id=template_id,
        status="completed",
        # As the executor sends them: the totals spare the copy's own reads of its times and steps.
        totals=ExecutionTotals(duration_ms=12.0, tokens=5, cost_usd=0.001, steps_completed=1, steps_total=1),
        step_results=[StepResult(step_id="s1", order=1, status="completed", agent_id="a1")],
    )
    records = [
        envelope(
            ev.ExecutionRequested(
                execution_id=execution_id, template_id=template_id, recipe=recipe, agents={"a1": agent}
            ),
            ws,
            execution_id,
            1,
        ),
        envelope(ev.ExecutionStarted(execution_id=execution_id, template_id=template_id), ws, execution_id, 2),
        envelope(completed, ws, execution_id, 3),
        envelope(finished, ws, execution_id, 4),
    ]
    bind = sessions.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    async with statements_sent(bind) as sent, sessions() as session, session.begin():
        await handle(session, records)
    statements = [sql for sql, _ in sent]

    reads = [s for s in statements if s.startswith("SELECT") and "FROM execution_copies" in s]
    assert reads == []
    async with sessions() as session:
        row = (
            await session.execute(
                text("SELECT recipe_revision, models FROM assessments WHERE execution_id = :e"), {"e": execution_id}
            )
        ).one()
    assert (row.recipe_revision, row.models) == (3, ["gpt-4o-mini"])
    # The assessment's row and the recipe's score; the analysis's row and the recipe's learning: a statement each.
    (assessed,) = [s for s in statements if s.startswith("WITH assessed AS ( INSERT INTO assessments")]
    (analysed,) = [s for s in statements if s.startswith("WITH analysis AS ( INSERT INTO analyses")]
    assert "INSERT INTO recipe_quality" in assessed and "INSERT INTO recipe_quality" in analysed
    assert not [s for s in statements if s.startswith(("INSERT INTO assessments", "INSERT INTO analyses"))]
    async with sessions() as session:
        quality = (
            await session.execute(
                text(
                    "SELECT assessment_count, jsonb_array_length(learning_data -> 'analyses') AS analyses, "
                    "(SELECT count(*) FROM analyses WHERE execution_id = :e) AS rows "
                    "FROM recipe_quality WHERE template_id = :t"
                ),
                {"e": execution_id, "t": template_id},
            )
        ).one()
    assert (quality.assessment_count, quality.analyses, quality.rows) == (1, 1, 1)

"""A finish's summary of its steps is written in one statement that leaves the rows it would not change
unwritten (no new row version), and changes the ones it does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.ids import new_id
from sous_quality.adapters import copies

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def sessions(quality: tuple[Any, async_sessionmaker[AsyncSession]]) -> async_sessionmaker[AsyncSession]:
    return quality[1]


async def row_versions(sessions: async_sessionmaker[AsyncSession], execution_id: str) -> dict[str, tuple[str, str]]:
    """step id -> (xmin, status): xmin changes whenever the row is written."""
    async with sessions() as session:
        result = await session.execute(
            text("SELECT step_id, xmin::text, status FROM step_results WHERE execution_id = :e"), {"e": execution_id}
        )
        return {step_id: (xmin, status) for step_id, xmin, status in result}


async def test_a_summary_rewrites_only_the_steps_it_changes(sessions: async_sessionmaker[AsyncSession]) -> None:
    execution_id = new_id()
    async with sessions() as session, session.begin():
        for step_id in ("a", "b"):
            await copies.upsert_step(session, execution_id, step_id, status="completed", output="ok", attempts=1)
    before = await row_versions(sessions, execution_id)

    summary = [
        ("a", {"status": "completed", "attempts": 1}),  # as its outcome said
        ("b", {"status": "completed", "attempts": 2}),  # a later attempt
        ("c", {"status": "skipped", "attempts": 1}),  # never had an outcome
    ]
    async with sessions() as session, session.begin():
        await copies.upsert_steps(session, execution_id, summary)
    after = await row_versions(sessions, execution_id)

    assert after["a"] == before["a"]  # not written again
    assert after["b"][0] != before["b"][0]
    assert after["c"][1] == "skipped"
    async with sessions() as session:
        steps = {step.step_id: step for step in await copies.load_steps(session, execution_id)}
    assert (steps["a"].output, steps["b"].attempts, steps["b"].output) == ("ok", 2, "ok")

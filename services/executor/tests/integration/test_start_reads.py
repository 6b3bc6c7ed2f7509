"""A start reads its recipe and the agents its steps and judges name from the replicas in one statement."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_executor.adapters import repositories as repo
from sous_local.testing import unique
from sous_service.statement_pool import StatementPool

pytestmark = pytest.mark.integration


async def test_the_recipe_comes_with_the_live_replicas_of_its_step_and_judge_agents(
    sessions: async_sessionmaker[AsyncSession], statements: StatementPool
) -> None:
    ws, other = unique("ws"), unique("ws")
    worker, judge, gone, idle = (unique("agent") for _ in range(4))
    recipe = {
        "template_id": unique("recipe"),
        "steps": [
            {"step_id": "a", "agent_id": worker, "checks": [{"type": "judge", "agent_id": judge}]},
            {"step_id": "b", "agent_id": gone, "checks": [{"type": "regex", "agent_id": idle}]},
        ],
    }
    async with sessions() as session, session.begin():
        await repo.upsert_recipe(session, ws, recipe, 1)
        for agent_id in (worker, judge, gone, idle):
            await repo.upsert_agent(session, ws, {"id": agent_id, "name": agent_id}, 1)
        await repo.delete_agent(session, gone, ws)
    found = await repo.get_recipe_with_agents(statements, ws, recipe["template_id"])
    elsewhere = await repo.get_recipe_with_agents(statements, other, recipe["template_id"])
    assert found is not None and elsewhere is None
    stored, agents = found
    assert stored["steps"] == recipe["steps"]
    # The removed agent is left out (a start then asks the catalog); a regex check names no agent it runs.
    assert sorted(agents) == sorted([worker, judge])
    assert agents[judge]["name"] == judge

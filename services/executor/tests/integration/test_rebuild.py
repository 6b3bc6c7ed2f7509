"""The executions read model rebuilt from the event store equals the live one."""

from __future__ import annotations

import pytest
from executor_harness import Running, agent_snapshot, recipe_snapshot, seed, start, step, wait_finished
from sqlalchemy import select, update

from sous_executor.adapters.tables import executions
from sous_executor.bootstrap import rebuild_read_models
from sous_local.testing import unique

pytestmark = pytest.mark.integration


async def test_rebuilt_executions_equal_the_live_read_model(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    key = unique("fail")
    recipe = recipe_snapshot(
        ws,
        [
            step("first", 1, agent["id"], "First"),
            step("broken", 2, agent["id"], f"Broken [[fail:500:9:{key}]]", error_handling="continue"),
            step("last", 3, agent["id"], "Last: {previous_output}"),
        ],
    )
    await seed(executor, ws, recipe, [agent])
    finished = []
    for _ in range(2):
        eid = await start(executor, ws, recipe["template_id"])
        finished.append(await wait_finished(executor, ws, recipe["template_id"], eid))
    assert [f["status"] for f in finished] == ["completed", "completed"]
    assert [r["status"] for r in finished[0]["step_results"]] == ["completed", "failed", "completed"]

    sessions = executor.executor.runtime.sessions

    async def snapshot() -> list[tuple[object, ...]]:
        async with sessions() as session:
            rows = await session.execute(select(executions).order_by(executions.c.execution_id))
            return [tuple(row) for row in rows]

    live = await snapshot()
    assert len(live) == 2
    # Damage the read model first, so a rebuild that replays nothing cannot pass.
    async with sessions() as session, session.begin():
        await session.execute(
            update(executions).where(executions.c.workspace_id == ws).values(status="pending", step_results=[])
        )
    assert await snapshot() != live
    replayed = await rebuild_read_models(executor.settings)
    assert replayed >= 2 * 9  # requested, started, 3 x (started, completed|failed), finished
    assert await snapshot() == live

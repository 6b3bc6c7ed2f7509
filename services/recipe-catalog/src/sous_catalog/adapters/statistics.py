"""The statistics consumed events move: one textual statement per event kind, prepared once per connection.

Each event's change is arithmetic in SQL on the rows it touches (no lock-then-read-then-write), in the
consumer's inbox transaction. Popularity and the success rate are computed by `sous_catalog.domain.recipe`
from the counts the statement returns (Python's rounding, the same as the API's), and written by a second
statement on the row the first one locked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from sous_catalog.domain.recipe import popularity
from sous_events import jsontext, learning_fold

# An execution's status moves forward only: a terminal status is final, and a late pending/running never
# moves it back (rank of the new status: pending 0, running 1, anything else 3).
_RANKS = {"pending": 0, "running": 1}
_OTHER_RANK = 3

_COUNTED = "RETURNING id, use_count, finished_count, success_count, success_rate, quality_score"

# A request inserts the execution once; only that insert counts a use of the recipe.
_REQUESTED = f"""
WITH requested AS (
    INSERT INTO executions (execution_id, workspace_id, recipe_id, status, requested_at, updated_at)
    VALUES ($1, $2, $3, 'pending', $4, $4)
    ON CONFLICT (execution_id) DO NOTHING
    RETURNING 1
)
UPDATE recipes SET use_count = use_count + 1, last_used_at = GREATEST(last_used_at, $4)
WHERE workspace_id = $2 AND template_id = $3 AND EXISTS (SELECT FROM requested)
{_COUNTED}
"""

# A later status ($4, ranked $6): when the execution moves, a completed or failed one ($7) counts a finish
# ($8: 1 when it succeeded).
_MOVED = f"""
WITH moved AS (
    INSERT INTO executions AS e (execution_id, workspace_id, recipe_id, status, requested_at, updated_at)
    VALUES ($1, $2, $3, $4::varchar, CASE WHEN $4::varchar = 'pending' THEN $5::timestamptz END, $5)
    ON CONFLICT (execution_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
    WHERE e.status NOT IN ('completed', 'failed', 'cancelled')
        AND (CASE e.status WHEN 'pending' THEN 0 WHEN 'running' THEN 1 ELSE 2 END) < $6::int
    RETURNING 1
)
UPDATE recipes SET finished_count = finished_count + 1, success_count = success_count + $8::int
WHERE workspace_id = $2 AND template_id = $3 AND $7::boolean AND EXISTS (SELECT FROM moved)
{_COUNTED}
"""

_QUALITY = f"UPDATE recipes SET quality_score = $3 WHERE workspace_id = $1 AND template_id = $2 {_COUNTED}"

_RATES = "UPDATE recipes SET success_rate = $2, popularity = $3 WHERE id = $1"

# A run's analysis ($3..$7) folded into the recipe's learning_data, which is neither read nor sent back.
_LEARNING = (
    f"UPDATE recipes SET learning_data = {learning_fold.folded('learning_data', 3)} "
    "WHERE workspace_id = $1 AND template_id = $2"
)

_AGENT_METRICS = "UPDATE agents SET metrics = $3::jsonb WHERE workspace_id = $1 AND id = $2"


class StatisticsWriter:
    """The statistics of one workspace's recipes and agents, written in the session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._connection: AsyncConnection | None = None

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> CursorResult[Any]:
        if self._connection is None:
            self._connection = await self.session.connection()
        return await self._connection.exec_driver_sql(sql, params)

    async def _run(self, sql: str, *params: Any) -> None:
        await self._execute(sql, params)

    async def _counts(self, sql: str, *params: Any) -> Any:
        """The counts a statement left on the recipe it changed (None: it changed none)."""
        return (await self._execute(sql, params)).first()

    async def requested(self, workspace_id: str, execution_id: str, template_id: str, at: datetime) -> None:
        """A request counts a use of the recipe, once per execution."""
        await self._rates(await self._counts(_REQUESTED, execution_id, workspace_id, template_id, at))

    async def moved(self, workspace_id: str, execution_id: str, template_id: str, status: str, at: datetime) -> None:
        """The execution's new status; a finish (completed or failed, once per execution) moves the success rate."""
        counted = status in ("completed", "failed")
        success = 1 if status == "completed" else 0
        rank = _RANKS.get(status, _OTHER_RANK)
        row = await self._counts(_MOVED, execution_id, workspace_id, template_id, status, at, rank, counted, success)
        await self._rates(row, finished=True)

    async def quality(self, workspace_id: str, template_id: str, score: float) -> None:
        await self._rates(await self._counts(_QUALITY, workspace_id, template_id, min(max(score, 0.0), 1.0)))

    async def learning(
        self,
        workspace_id: str,
        template_id: str,
        *,
        execution_id: str,
        analyzed_at: str,
        findings: tuple[list[Any], list[Any], dict[str, Any]],
    ) -> None:
        """A run's analysis (`findings`: its patterns, suggestions and performance_metrics as written), folded
        into the recipe's learning_data."""
        documents = [jsontext.dumps(document) for document in findings]
        await self._run(_LEARNING, workspace_id, template_id, execution_id, analyzed_at, *documents)

    async def agent_metrics(self, workspace_id: str, agent_id: str, metrics: dict[str, Any]) -> None:
        await self._run(_AGENT_METRICS, workspace_id, agent_id, jsontext.dumps(metrics))

    async def _rates(self, row: Any, *, finished: bool = False) -> None:
        """Popularity (and, after a finish, the success rate) from the counts the change left."""
        if row is None:
            return
        rate = round(row.success_count / row.finished_count, 6) if finished else row.success_rate
        await self._run(_RATES, row.id, rate, popularity(row.use_count, rate, row.quality_score))

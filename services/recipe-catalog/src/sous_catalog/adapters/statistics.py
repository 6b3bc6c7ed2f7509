"""The statistics consumed events move: textual statements, prepared once per connection.

An event's change to its execution row is its own statement (an execution's status moves forward only, and a
use or a finish is counted once, by the statement that inserts or moves the row). What the events of a batch
add to a recipe (uses, finishes, successes, the latest quality score) is tallied in the batch's session and
written once, when the batch's records are handled (`flush`): one UPDATE of the recipe's counters, arithmetic
in SQL (no lock-then-read-then-write), then its popularity and success rate, computed by
`sous_catalog.domain.recipe` from the counts it returned (Python's rounding, the same as the API's). A batch of
many runs of one recipe then writes that recipe twice instead of twice per event; the batch's records and its
tally commit or roll back together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.domain.recipe import popularity
from sous_events import driver, jsontext, learning_fold

# An execution's status moves forward only: a terminal status is final, and a late pending/running never
# moves it back (rank of the new status: pending 0, running 1, anything else 3).
_RANKS = {"pending": 0, "running": 1}
_OTHER_RANK = 3

# A request inserts the execution once; only that insert counts a use of the recipe.
_REQUESTED = """
INSERT INTO executions (execution_id, workspace_id, recipe_id, status, requested_at, updated_at)
VALUES ($1, $2, $3, 'pending', $4, $4)
ON CONFLICT (execution_id) DO NOTHING
RETURNING 1
"""

# A later status ($4, ranked $6); returns a row when the execution moved (a finish then counts).
_MOVED = """
INSERT INTO executions AS e (execution_id, workspace_id, recipe_id, status, requested_at, updated_at)
VALUES ($1, $2, $3, $4::varchar, CASE WHEN $4::varchar = 'pending' THEN $5::timestamptz END, $5)
ON CONFLICT (execution_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
WHERE e.status NOT IN ('completed', 'failed', 'cancelled')
    AND (CASE e.status WHEN 'pending' THEN 0 WHEN 'running' THEN 1 ELSE 2 END) < $6::int
RETURNING 1
"""

# A batch's tally of one recipe: uses ($3, the latest at $4), finishes ($5), successes ($6), the latest
# quality score ($7, NULL: none in the batch).
_TALLIED = """
UPDATE recipes SET use_count = use_count + $3, last_used_at = GREATEST(last_used_at, $4::timestamptz),
    finished_count = finished_count + $5, success_count = success_count + $6,
    quality_score = COALESCE($7::float8, quality_score)
WHERE workspace_id = $1 AND template_id = $2
RETURNING id, use_count, finished_count, success_count, success_rate, quality_score
"""

_RATES = "UPDATE recipes SET success_rate = $2, popularity = $3 WHERE id = $1"

# A batch's analyses of one recipe, folded into its learning_data in one statement, in the order they came (the
# document is neither read nor sent back): at most this many per statement, each five parameters from $3 on.
MAX_FOLDED = 8


def _learning_sql(count: int) -> str:
    folded = "learning_data"
    for index in range(count):
        folded = learning_fold.folded(folded, 3 + 5 * index)
    return f"UPDATE recipes SET learning_data = {folded} WHERE workspace_id = $1 AND template_id = $2"


_LEARNING = tuple(_learning_sql(count) for count in range(1, MAX_FOLDED + 1))

_AGENT_METRICS = "UPDATE agents SET metrics = $3::jsonb WHERE workspace_id = $1 AND id = $2"


# Where a batch's session keeps its tally and its recipes' analyses (sessions are one per batch transaction).
TALLY_KEY = "sous_catalog.recipe_tally"
LEARNINGS_KEY = "sous_catalog.recipe_learnings"


@dataclass
class RecipeTally:
    """What a batch's events add to one recipe."""

    uses: int = 0
    last_used_at: datetime | None = None
    finished: int = 0
    successes: int = 0
    quality_score: float | None = None

    def used(self, at: datetime) -> None:
        self.uses += 1
        self.last_used_at = at if self.last_used_at is None else max(self.last_used_at, at)


class StatisticsWriter:
    """The statistics of one workspace's recipes and agents, written in the session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _first(self, sql: str, *params: Any) -> driver.Record | None:
        return await driver.fetchrow(self.session, sql, *params)

    async def _run(self, sql: str, *params: Any) -> None:
        await driver.execute(self.session, sql, *params)

    def _tally(self, workspace_id: str, template_id: str) -> RecipeTally:
        tallies: dict[tuple[str, str], RecipeTally] = self.session.info.setdefault(TALLY_KEY, {})
        return tallies.setdefault((workspace_id, template_id), RecipeTally())

    async def requested(self, workspace_id: str, execution_id: str, template_id: str, at: datetime) -> None:
        """A request counts a use of the recipe, once per execution."""
        if await self._first(_REQUESTED, execution_id, workspace_id, template_id, at) is not None:
            self._tally(workspace_id, template_id).used(at)

    async def moved(self, workspace_id: str, execution_id: str, template_id: str, status: str, at: datetime) -> None:
        """The execution's new status; a finish (completed or failed, once per execution) moves the success rate."""
        rank = _RANKS.get(status, _OTHER_RANK)
        moved = await self._first(_MOVED, execution_id, workspace_id, template_id, status, at, rank)
        if moved is not None and status in ("completed", "failed"):
            tally = self._tally(workspace_id, template_id)
            tally.finished += 1
            tally.successes += 1 if status == "completed" else 0

    def quality(self, workspace_id: str, template_id: str, score: float) -> None:
        self._tally(workspace_id, template_id).quality_score = min(max(score, 0.0), 1.0)

    def learning(
        self,
        workspace_id: str,
        template_id: str,
        *,
        execution_id: str,
        analyzed_at: str,
        findings: tuple[list[Any], list[Any], dict[str, Any]],
    ) -> None:
        """A run's analysis (`findings`: its patterns, suggestions and performance_metrics as written), folded
        into the recipe's learning_data with the batch's others at its end (`flush`)."""
        learnings: dict[tuple[str, str], list[Any]] = self.session.info.setdefault(LEARNINGS_KEY, {})
        staged = learnings.setdefault((workspace_id, template_id), [])
        staged.append((execution_id, analyzed_at, *(jsontext.dumps(document) for document in findings)))

    async def agent_metrics(self, workspace_id: str, agent_id: str, metrics: dict[str, Any]) -> None:
        await self._run(_AGENT_METRICS, workspace_id, agent_id, jsontext.dumps(metrics))

    async def flush(self) -> None:
        """Write the batch's tally (each recipe's counters, then its popularity and success rate) and fold its
        analyses into each recipe's learning_data."""
        learnings: dict[tuple[str, str], list[Any]] = self.session.info.pop(LEARNINGS_KEY, None) or {}
        for (workspace_id, template_id), staged in learnings.items():
            for start in range(0, len(staged), MAX_FOLDED):
                chunk = staged[start : start + MAX_FOLDED]
                values = [value for analysis in chunk for value in analysis]
                await self._run(_LEARNING[len(chunk) - 1], workspace_id, template_id, *values)
        tallies: dict[tuple[str, str], RecipeTally] = self.session.info.pop(TALLY_KEY, None) or {}
        for (workspace_id, template_id), tally in tallies.items():
            parameters = (
                workspace_id,
                template_id,
                tally.uses,
                tally.last_used_at,
                tally.finished,
                tally.successes,
                tally.quality_score,
            )
            row = await self._first(_TALLIED, *parameters)
            if row is None:
                continue
            rate = round(row["success_count"] / row["finished_count"], 6) if tally.finished else row["success_rate"]
            await self._run(_RATES, row["id"], rate, popularity(row["use_count"], rate, row["quality_score"]))

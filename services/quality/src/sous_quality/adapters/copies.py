"""SQL over the copies of other services' data: the catalog's recipes and the executor's executions and steps.

Every query that serves a caller filters by workspace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import jsontext
from sous_events.driver import Record
from sous_quality.adapters import statements
from sous_quality.adapters.tables import executions, recipes
from sous_quality.domain.record import ExecutionRecord, StepRecord, recipe_as_run, record_from_copies

# --- recipe copies -------------------------------------------------------------------------------


async def upsert_recipe(session: AsyncSession, workspace_id: str, recipe: dict[str, Any], at: datetime) -> None:
    steps = [s for s in (recipe.get("steps") or []) if isinstance(s, dict)]
    values = {
        "workspace_id": workspace_id,
        "template_id": str(recipe.get("template_id") or recipe.get("id")),
        "recipe_id": str(recipe.get("id") or recipe.get("template_id")),
        "deleted": False,
        "steps_count": len(steps),
        "steps": steps,
        "inputs": recipe.get("inputs") or {},
        "outputs": recipe.get("outputs") or {},
        "execution_config": recipe.get("execution_config") or {},
        "revision": int(recipe.get("revision") or 0),
        "updated_at": at,
    }
    stmt = pg_insert(recipes).values(**values)
    keep = {k: stmt.excluded[k] for k in values if k not in ("workspace_id", "template_id")}
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[recipes.c.workspace_id, recipes.c.template_id],
            set_=keep,
            # an older snapshot delivered late does not overwrite a newer one
            where=recipes.c.revision <= stmt.excluded.revision,
        )
    )


async def mark_recipe_deleted(session: AsyncSession, workspace_id: str, recipe_id: str, template_id: str) -> None:
    condition = recipes.c.template_id == template_id if template_id else recipes.c.recipe_id == recipe_id
    await session.execute(update(recipes).where(recipes.c.workspace_id == workspace_id, condition).values(deleted=True))


async def get_recipe(session: AsyncSession, workspace_id: str, template_id: str) -> Record | None:
    return await statements.first(
        session, "SELECT * FROM recipe_copies WHERE workspace_id = $1 AND template_id = $2", workspace_id, template_id
    )


# --- execution copies ----------------------------------------------------------------------------

# The NOT NULL columns a run's copy starts with when an event of it arrives before its ExecutionRequested.
_EXECUTION_COLUMNS = (
    "execution_id, workspace_id, template_id, status, recipe, agents, input_data, output_data, total_cost_usd, "
    "correlation_id"
)
_ENSURE_EXECUTION_SQL = f"""
INSERT INTO execution_copies ({_EXECUTION_COLUMNS})
VALUES ($1, $2, $3, 'pending', '{{}}', '{{}}', '{{}}', '{{}}', 0, '')
ON CONFLICT DO NOTHING
"""
_REQUESTED_SQL = f"""
INSERT INTO execution_copies ({_EXECUTION_COLUMNS}, requested_at)
VALUES ($1, $2, $3, 'pending', $4::jsonb, $5::jsonb, $6::jsonb, '{{}}', 0, $7, $8)
ON CONFLICT (execution_id) DO UPDATE SET recipe = EXCLUDED.recipe, agents = EXCLUDED.agents,
    input_data = EXCLUDED.input_data, correlation_id = EXCLUDED.correlation_id, requested_at = EXCLUDED.requested_at
"""
# Created if missing and marked running in one statement; a finished run's copy stays finished.
_STARTED_SQL = f"""
INSERT INTO execution_copies AS x ({_EXECUTION_COLUMNS}, started_at)
VALUES ($1, $2, $3, 'running', '{{}}', '{{}}', '{{}}', '{{}}', 0, '', $4)
ON CONFLICT (execution_id) DO UPDATE SET status = 'running', started_at = EXCLUDED.started_at
WHERE x.finished_at IS NULL
"""
_FINISHED_SQL = """
UPDATE execution_copies SET status = $2, output_data = $3::jsonb, error = $4, total_duration_ms = $5,
    total_tokens = $6, total_cost_usd = $7, finished_at = $8
WHERE execution_id = $1
RETURNING *
"""

# The run copies a finish wrote in this session's transaction, by execution id: the learning that follows the
# finish, and the assessment's projection, read the copy the finish returned instead of reading it back. Any
# other write to a run's copy forgets it.
_WRITTEN_KEY = "sous_quality.finished_copies"


def _written(session: AsyncSession) -> dict[str, Record]:
    written: dict[str, Record] = session.info.setdefault(_WRITTEN_KEY, {})
    return written


def _forget(session: AsyncSession, execution_id: str) -> None:
    session.info.get(_WRITTEN_KEY, {}).pop(execution_id, None)


async def ensure_execution(session: AsyncSession, workspace_id: str, execution_id: str, template_id: str) -> None:
    _forget(session, execution_id)
    await statements.execute(session, _ENSURE_EXECUTION_SQL, execution_id, workspace_id, template_id)


async def record_requested(
    session: AsyncSession,
    *,
    workspace_id: str,
    execution_id: str,
    template_id: str,
    recipe: dict[str, Any],
    agents: dict[str, Any],
    input_data: dict[str, Any],
    correlation_id: str,
    at: datetime,
) -> None:
    _forget(session, execution_id)
    await statements.execute(
        session,
        _REQUESTED_SQL,
        execution_id,
        workspace_id,
        template_id,
        jsontext.dumps(recipe),
        jsontext.dumps(agents),
        jsontext.dumps(input_data),
        correlation_id,
        at,
    )


async def record_started(
    session: AsyncSession, workspace_id: str, execution_id: str, template_id: str, at: datetime
) -> None:
    """The run started: its copy (created if missing) is running, unless it already finished."""
    _forget(session, execution_id)
    await statements.execute(session, _STARTED_SQL, execution_id, workspace_id, template_id, at)


async def record_finished(
    session: AsyncSession,
    *,
    execution_id: str,
    status: str,
    output_data: dict[str, Any],
    error: str | None,
    total_duration_ms: float | None,
    total_tokens: int | None,
    total_cost_usd: float,
    at: datetime,
) -> None:
    row = await statements.first(
        session,
        _FINISHED_SQL,
        execution_id,
        status,
        jsontext.dumps(output_data),
        error,
        total_duration_ms,
        total_tokens,
        total_cost_usd,
        at,
    )
    if row is None:
        _forget(session, execution_id)
    else:
        _written(session)[execution_id] = row


async def get_execution(session: AsyncSession, execution_id: str) -> Record | None:
    if (written := _written(session).get(execution_id)) is not None:
        return written
    return await statements.first(session, "SELECT * FROM execution_copies WHERE execution_id = $1", execution_id)


async def revision_and_agents(session: AsyncSession, execution_id: str) -> Mapping[str, Any] | None:
    """The recipe revision a run used and its agents, without reading the rest of the run's copy."""
    if (written := _written(session).get(execution_id)) is not None:
        return {"revision": (written["recipe"] or {}).get("revision"), "agents": written["agents"]}
    row = await statements.first(
        session,
        "SELECT recipe -> 'revision' AS revision, agents FROM execution_copies WHERE execution_id = $1",
        execution_id,
    )
    return None if row is None else dict(row)


async def find_execution(
    session: AsyncSession, workspace_id: str, template_id: str, execution_id: str
) -> RowMapping | None:
    result = await session.execute(
        select(executions).where(
            executions.c.execution_id == execution_id,
            executions.c.workspace_id == workspace_id,
            executions.c.template_id == template_id,
        )
    )
    return result.mappings().first()


# --- step rows -----------------------------------------------------------------------------------

# What a step's row holds besides its key, with what a new row starts with.
STEP_DEFAULTS: dict[str, Any] = {
    "order": 0,
    "agent_id": "",
    "agent_name": "",
    "status": "pending",
    "attempts": 1,
    "output": None,
    "duration_ms": None,
    "tokens": None,
    "cost_usd": 0.0,
    "error": None,
    "reused": False,
}
_STEP_COLUMNS = ("execution_id", "step_id", *STEP_DEFAULTS)
_STEP_UPSERTS: dict[tuple[frozenset[str], int], str] = {}


def _step_values_sql(row: int) -> str:
    """The placeholders of the `row`-th row (from 0); output is JSONB."""
    first = row * len(_STEP_COLUMNS) + 1
    return (
        "("
        + ", ".join(
            f"${first + i}::jsonb" if name == "output" else f"${first + i}" for i, name in enumerate(_STEP_COLUMNS)
        )
        + ")"
    )


def _step_upsert_sql(given: frozenset[str], rows: int) -> str:
    """The upsert of `rows` steps that changes the `given` columns of an existing row (attempts only grow) and
    leaves a row the values would not change unwritten; one text per set and row count."""
    sql = _STEP_UPSERTS.get((given, rows))
    if sql is None:
        changed = [name for name in STEP_DEFAULTS if name in given]
        changes = [
            f'"{name}" = EXCLUDED."{name}"'
            if name != "attempts"
            else "attempts = GREATEST(s.attempts, EXCLUDED.attempts)"
            for name in changed
        ]
        differs = [
            f's."{name}" IS DISTINCT FROM EXCLUDED."{name}"' if name != "attempts" else "s.attempts < EXCLUDED.attempts"
            for name in changed
        ]
        conflict = f"DO UPDATE SET {', '.join(changes)} WHERE {' OR '.join(differs)}" if changes else "DO NOTHING"
        columns = ", ".join(f'"{name}"' for name in _STEP_COLUMNS)
        values = ", ".join(_step_values_sql(row) for row in range(rows))
        sql = (
            f"INSERT INTO step_results AS s ({columns}) VALUES {values} ON CONFLICT (execution_id, step_id) {conflict}"
        )
        _STEP_UPSERTS[(given, rows)] = sql
    return sql


async def upsert_step(session: AsyncSession, execution_id: str, step_id: str, **values: Any) -> None:
    """Write what an event says about a step; attempts only grow."""
    await upsert_steps(session, execution_id, [(step_id, values)])


def _check_step_columns(values: Mapping[str, Any]) -> None:
    unknown = values.keys() - STEP_DEFAULTS.keys()
    if unknown:
        raise ValueError(f"step_results has no column {sorted(unknown)}")


# Step outcomes a batch has yet to write, by execution and step: a run's outcomes in one batch are one statement,
# written when the batch's records are handled, or before anything reads or writes that run's steps.
_STAGED_KEY = "sous_quality.staged_steps"


def stage_step(session: AsyncSession, execution_id: str, step_id: str, **values: Any) -> None:
    """What an event says about a step, written with the batch's other outcomes of the run (`flush_steps`). A
    step staged twice keeps the later values of the columns both give, as two upserts in turn would."""
    _check_step_columns(values)
    staged: dict[str, dict[str, dict[str, Any]]] = session.info.setdefault(_STAGED_KEY, {})
    steps = staged.setdefault(execution_id, {})
    steps[step_id] = {**steps.get(step_id, {}), **values}


async def flush_steps(session: AsyncSession, execution_id: str | None = None) -> None:
    """Write the staged outcomes of one run (None: of every run)."""
    staged: dict[str, dict[str, dict[str, Any]]] = session.info.get(_STAGED_KEY) or {}
    for run in list(staged) if execution_id is None else [execution_id]:
        steps = staged.pop(run, None)
        if steps:
            await upsert_steps(session, run, list(steps.items()))


async def upsert_steps(session: AsyncSession, execution_id: str, steps: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Write what an event says about several steps, one statement per set of columns given (a finish's summary
    gives the same for every step); a step named twice takes its last values. The run's staged outcomes are
    written first."""
    await flush_steps(session, execution_id)
    groups: dict[frozenset[str], dict[str, dict[str, Any]]] = {}
    for step_id, values in steps:
        _check_step_columns(values)
        groups.setdefault(frozenset(values), {})[step_id] = values
    for given, by_step in groups.items():
        parameters: list[Any] = []
        for step_id, values in by_step.items():
            row = {**STEP_DEFAULTS, **values}
            row["output"] = statements.json_text(row["output"])
            parameters += [execution_id, step_id, *row.values()]
        await statements.execute(session, _step_upsert_sql(given, len(by_step)), *parameters)


async def load_steps(session: AsyncSession, execution_id: str) -> list[StepRecord]:
    await flush_steps(session, execution_id)
    found = await statements.rows(session, "SELECT * FROM step_results WHERE execution_id = $1", execution_id)
    return [
        StepRecord(
            step_id=row["step_id"],
            order=row["order"],
            agent_id=row["agent_id"],
            status=row["status"],
            attempts=row["attempts"],
            output=row["output"],
            duration_ms=row["duration_ms"],
            tokens=row["tokens"],
            cost_usd=row["cost_usd"],
            error=row["error"],
            reused=row["reused"],
        )
        for row in found
    ]


async def execution_record(session: AsyncSession, execution: RowMapping, recipe: RowMapping | None) -> ExecutionRecord:
    """What the domain scores: the run's copy, its steps and the recipe as the catalog has it now (`recipe`,
    the copy of it the caller read; None when there is none)."""
    snapshot: dict[str, Any] = execution["recipe"] or {}
    return record_from_copies(
        execution_id=execution["execution_id"],
        template_id=execution["template_id"],
        status=execution["status"],
        steps=await load_steps(session, execution["execution_id"]),
        recipe=recipe_as_run(snapshot, recipe),
        output_data=execution["output_data"],
        error_message=execution["error"],
        total_duration_ms=execution["total_duration_ms"],
        total_tokens=execution["total_tokens"],
        total_cost_usd=execution["total_cost_usd"],
        input_data=execution["input_data"],
        snapshot_inputs=snapshot.get("inputs") if "inputs" in snapshot else None,
    )

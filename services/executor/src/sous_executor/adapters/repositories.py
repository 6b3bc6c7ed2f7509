"""Reading and writing the executor's tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sous_executor.adapters.tables import agent_replicas, executions, recipe_replicas, schedule_runs
from sous_executor.domain.execution import Execution
from sous_service.statement_pool import StatementPool

ACTIVE_STATUSES = ("pending", "running")


# ------------------------------------------------------------------ read model
def execution_row(execution: Execution) -> dict[str, Any]:
    return {
        "execution_id": execution.execution_id,
        "workspace_id": execution.workspace_id,
        "recipe_id": execution.template_id,
        "recipe_name": execution.recipe_name,
        "status": execution.status,
        "current_step": execution.current_step,
        "total_steps": len(execution.steps),
        "finished_steps": execution.finished_steps,
        "step_results": execution.step_results(),
        "input_data": execution.input_data,
        "output_data": execution.output_data,
        "error_message": execution.error,
        "triggered_by": execution.triggered_by,
        "execution_metadata": {
            "rerun_of": execution.rerun_of,
            "from_step": execution.from_step,
            "runner_id": execution.runner_id,
            "mode": (execution.recipe.get("execution_config") or {}).get("mode", "sequential"),
            "recipe_revision": execution.recipe.get("revision"),
            "cancel_reason": execution.cancel_reason or None,
        },
        "total_duration_ms": execution.total_duration_ms,
        "total_tokens": execution.total_tokens,
        "total_cost_usd": round(execution.total_cost_usd, 8),
        "cancel_requested": execution.cancel_requested,
        "version": execution.version,
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "completed_at": execution.completed_at,
    }


async def project_execution(session: AsyncSession, execution: Execution) -> None:
    """Upsert the execution's read-model row (same transaction as the append)."""
    row = execution_row(execution)
    stmt = pg_insert(executions).values(**row)
    update = {k: stmt.excluded[k] for k in row if k != "execution_id"}
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[executions.c.execution_id], set_=update, where=executions.c.version <= stmt.excluded.version
        )
    )


def execution_view(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "execution_id": m["execution_id"],
        "recipe_execution_id": m["execution_id"],
        "recipe_id": m["recipe_id"],
        "recipe_name": m["recipe_name"],
        "status": m["status"],
        "current_step": m["current_step"],
        "total_steps": m["total_steps"],
        "step_results": m["step_results"],
        "input_data": m["input_data"],
        "output_data": m["output_data"],
        "error_message": m["error_message"],
        "started_at": _iso(m["started_at"]),
        "completed_at": _iso(m["completed_at"]),
        "created_at": _iso(m["created_at"]),
        "triggered_by": m["triggered_by"],
        "execution_metadata": m["execution_metadata"],
        "total_duration_ms": m["total_duration_ms"],
        "total_tokens": m["total_tokens"],
        "total_cost_usd": m["total_cost_usd"],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def get_execution_row(session: AsyncSession, workspace_id: str, execution_id: str) -> Any:
    result = await session.execute(
        select(executions).where(executions.c.workspace_id == workspace_id, executions.c.execution_id == execution_id)
    )
    return result.first()


async def list_execution_rows(
    session: AsyncSession, workspace_id: str, recipe_id: str, status: str | None, skip: int, limit: int
) -> tuple[list[Any], int]:
    where = [executions.c.workspace_id == workspace_id, executions.c.recipe_id == recipe_id]
    if status:
        where.append(executions.c.status == status)
    total = (await session.execute(select(func.count()).select_from(executions).where(*where))).scalar_one()
    rows = (
        await session.execute(
            select(executions)
            .where(*where)
            .order_by(executions.c.created_at.desc(), executions.c.execution_id.desc())
            .offset(skip)
            .limit(limit)
        )
    ).all()
    return list(rows), int(total)


# ------------------------------------------------------------------ replicas
# Copies arrive from catalog events and from an HTTP fallback, in any order. A copy replaces the stored
# one only if it is of a later recipe (UUIDv7 ids grow with time: a recipe re-created under the same
# template_id) or of the same live recipe at an equal or later revision. Deletes leave tombstones, so a
# stale copy fetched before the delete cannot bring the recipe (or agent) back.
async def upsert_recipe(session: AsyncSession, workspace_id: str, recipe: dict[str, Any], revision: int) -> bool:
    """Store this copy unless a newer one (or the recipe's tombstone) is there; True if stored."""
    schedule = recipe.get("schedule_config") or {}
    values = {
        "workspace_id": workspace_id,
        "template_id": str(recipe["template_id"]),
        "recipe_id": str(recipe.get("id") or recipe["template_id"]),
        "revision": revision,
        "webhook_id": schedule.get("webhook_id") or None,
        "schedule_type": str(schedule.get("type") or "manual"),
        "recipe": recipe,
        "replicated_at": func.now(),
        "deleted": False,
    }
    stmt = pg_insert(recipe_replicas).values(**values)
    current = recipe_replicas.c
    newer = (current.recipe_id < stmt.excluded.recipe_id) | (
        (current.recipe_id == stmt.excluded.recipe_id) & ~current.deleted & (current.revision <= stmt.excluded.revision)
    )
    result = await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[current.workspace_id, current.template_id],
            set_={k: stmt.excluded[k] for k in values if k not in ("workspace_id", "template_id")},
            where=newer,
        ).returning(current.template_id)
    )
    return result.first() is not None


async def delete_recipe(session: AsyncSession, workspace_id: str, recipe_id: str, template_id: str) -> None:
    if template_id:
        stmt = pg_insert(recipe_replicas).values(
            workspace_id=workspace_id,
            template_id=template_id,
            recipe_id=recipe_id,
            revision=0,
            recipe={},
            deleted=True,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[recipe_replicas.c.workspace_id, recipe_replicas.c.template_id],
                set_={
                    "deleted": True,
                    "recipe_id": stmt.excluded.recipe_id,
                    "webhook_id": None,
                    "replicated_at": func.now(),
                },
                where=recipe_replicas.c.recipe_id <= stmt.excluded.recipe_id,
            )
        )
        return
    await session.execute(
        update(recipe_replicas)
        .where(recipe_replicas.c.workspace_id == workspace_id, recipe_replicas.c.recipe_id == recipe_id)
        .values(deleted=True, webhook_id=None, replicated_at=func.now())
    )


async def get_recipe(session: AsyncSession, workspace_id: str, template_id: str) -> dict[str, Any] | None:
    result = await session.execute(
        select(recipe_replicas.c.recipe).where(
            recipe_replicas.c.workspace_id == workspace_id,
            recipe_replicas.c.template_id == template_id,
            ~recipe_replicas.c.deleted,
        )
    )
    value = result.scalar_one_or_none()
    return dict(value) if value is not None else None


# A recipe with the replicas of the agents its steps and judges name, in one round trip (what a start
# reads), as JSON text: decoded once here, not by a codec and again by the caller.
_RECIPE_WITH_AGENTS = (
    "SELECT r.recipe::text, (SELECT jsonb_object_agg(a.agent_id, a.agent) FROM agent_replicas a "
    "WHERE a.workspace_id = r.workspace_id AND NOT a.deleted AND a.agent_id IN ("
    "SELECT jsonb_path_query(r.recipe, '$.steps[*].agent_id') #>> '{}' UNION ALL "
    "SELECT jsonb_path_query(r.recipe, '$.steps[*].checks[*] ? (@.type == \"judge\").agent_id') #>> '{}'"
    "))::text FROM recipe_replicas r "
    "WHERE r.workspace_id = $1 AND r.template_id = $2 AND NOT r.deleted"
)


async def get_recipe_with_agents(
    statements: StatementPool, workspace_id: str, template_id: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
    """The replicated recipe and the replicated agents it references (by agent id), or None."""
    row = await statements.fetchrow(_RECIPE_WITH_AGENTS, workspace_id, template_id)
    if row is None:
        return None
    recipe, agents = row
    return dict(json.loads(recipe)), {str(k): dict(v) for k, v in json.loads(agents or "{}").items()}


async def find_recipe_by_webhook(session: AsyncSession, webhook_id: str) -> tuple[str, dict[str, Any]] | None:
    result = await session.execute(
        select(recipe_replicas.c.workspace_id, recipe_replicas.c.recipe).where(
            recipe_replicas.c.webhook_id == webhook_id, ~recipe_replicas.c.deleted
        )
    )
    row = result.first()
    return (row[0], dict(row[1])) if row is not None else None


async def take_schedule_slot(
    session: AsyncSession, workspace_id: str, template_id: str, due_at: datetime, execution_id: str
) -> bool:
    """Take the slot of a cron run due at `due_at` for this execution; False when another instance has it."""
    taken = await session.execute(
        pg_insert(schedule_runs)
        .values(workspace_id=workspace_id, template_id=template_id, due_at=due_at, execution_id=execution_id)
        .on_conflict_do_nothing()
        .returning(schedule_runs.c.execution_id)
    )
    return taken.first() is not None


async def cron_recipes(session: AsyncSession) -> list[tuple[str, dict[str, Any], datetime]]:
    result = await session.execute(
        select(recipe_replicas.c.workspace_id, recipe_replicas.c.recipe, recipe_replicas.c.replicated_at).where(
            recipe_replicas.c.schedule_type == "cron", ~recipe_replicas.c.deleted
        )
    )
    return [(r[0], dict(r[1]), r[2]) for r in result.all()]


async def upsert_agent(session: AsyncSession, workspace_id: str, agent: dict[str, Any], revision: int = 0) -> bool:
    """Store this copy unless a later revision or the agent's tombstone is there; True if stored."""
    values = {
        "agent_id": str(agent["id"]),
        "workspace_id": workspace_id,
        "agent": agent,
        "revision": revision,
        "replicated_at": func.now(),
    }
    stmt = pg_insert(agent_replicas).values(**values)
    result = await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[agent_replicas.c.agent_id],
            set_={
                "workspace_id": stmt.excluded.workspace_id,
                "agent": stmt.excluded.agent,
                "revision": stmt.excluded.revision,
                "replicated_at": func.now(),
            },
            where=~agent_replicas.c.deleted & (agent_replicas.c.revision <= stmt.excluded.revision),
        ).returning(agent_replicas.c.agent_id)
    )
    return result.first() is not None


async def delete_agent(session: AsyncSession, agent_id: str, workspace_id: str = "") -> None:
    stmt = pg_insert(agent_replicas).values(
        agent_id=agent_id, workspace_id=workspace_id, agent={}, revision=0, deleted=True
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[agent_replicas.c.agent_id], set_={"deleted": True, "replicated_at": func.now()}
        )
    )


async def get_agents(session: AsyncSession, workspace_id: str, agent_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not agent_ids:
        return {}
    result = await session.execute(
        select(agent_replicas.c.agent_id, agent_replicas.c.agent).where(
            agent_replicas.c.workspace_id == workspace_id,
            agent_replicas.c.agent_id.in_(list(agent_ids)),
            ~agent_replicas.c.deleted,
        )
    )
    return {row[0]: dict(row[1]) for row in result.all()}


async def agent_deleted(session: AsyncSession, agent_id: str) -> bool:
    result = await session.execute(select(agent_replicas.c.deleted).where(agent_replicas.c.agent_id == agent_id))
    return bool(result.scalar_one_or_none())

"""Reads and writes of the workflow tables; projections of workflow events."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Float, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import driver, jsontext
from sous_events.contracts import Suggestion
from sous_executor.adapters.tables import agent_replicas, executions
from sous_executor.workflows.model import WorkflowRun
from sous_executor.workflows.tables import (
    agent_metrics,
    quality_signals,
    workflow_leases,
    workflow_memory,
    workflow_runs,
    workflows,
)
from sous_service.ordering import by_name

MAX_QUERY_WORDS = 32


# ---------------------------------------------------------------- definitions
async def project_workflow(session: AsyncSession, doc: dict[str, Any], version: int, deleted: bool) -> None:
    if deleted:
        await session.execute(delete(workflows).where(workflows.c.workflow_id == doc["id"]))
        return
    values = {
        "workspace_id": doc["workspace_id"],
        "name": doc["name"],
        "description": doc.get("description") or "",
        "owner": doc.get("owner") or "",
        "tags": doc.get("tags") or [],
        "status": doc["status"],
        "doc": doc,
        "version": version,
        "created_at": datetime.fromisoformat(doc["created_at"]),
        "updated_at": datetime.fromisoformat(doc["updated_at"]),
    }
    stmt = pg_insert(workflows).values(workflow_id=doc["id"], **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[workflows.c.workflow_id], set_=values))


async def get_workflow(session: AsyncSession, workspace_id: str, workflow_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(workflows.c.doc, workflows.c.version).where(
                workflows.c.workflow_id == workflow_id, workflows.c.workspace_id == workspace_id
            )
        )
    ).first()
    if row is None:
        return None
    return {**row.doc, "revision": row.version}


async def list_workflows(
    session: AsyncSession,
    workspace_id: str,
    *,
    q: str | None,
    owner: str | None,
    tag: str | None,
    status: str | None,
    skip: int,
    limit: int,
    sort_by: str = "updated_at",
) -> tuple[list[dict[str, Any]], int]:
    w = workflows.c
    conditions = [w.workspace_id == workspace_id]
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(w.name.ilike(pattern, escape="\\"), w.description.ilike(pattern, escape="\\")))
    if owner:
        conditions.append(w.owner == owner)
    if tag:
        conditions.append(w.tags.contains([tag]))
    if status:
        conditions.append(w.status == status)
    total = (await session.execute(select(func.count()).select_from(workflows).where(*conditions))).scalar_one()
    rows = (
        await session.execute(
            select(w.doc, w.version)
            .where(*conditions)
            .order_by(*(by_name(w.name, w.workflow_id) if sort_by == "name" else (w.updated_at.desc(), w.workflow_id)))
            .offset(skip)
            .limit(limit)
        )
    ).all()
    return [{**r.doc, "revision": r.version} for r in rows], int(total)


# ---------------------------------------------------------------- runs
async def project_run(session: AsyncSession, run: WorkflowRun) -> None:
    current = run.current()
    values = {
        "workspace_id": run.workspace_id,
        "workflow_id": run.workflow_id,
        "status": run.status,
        "current_stage": current.stage if current else None,
        "execution_id": run.execution_id,
        "doc": run.view(),
        "version": run.version,
        "created_at": run.created_at,
        "completed_at": run.completed_at,
    }
    stmt = pg_insert(workflow_runs).values(run_id=run.run_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[workflow_runs.c.run_id], set_=values))


async def get_run_row(session: AsyncSession, workspace_id: str, run_id: str) -> Any:
    return (
        await session.execute(
            select(workflow_runs).where(workflow_runs.c.run_id == run_id, workflow_runs.c.workspace_id == workspace_id)
        )
    ).first()


async def list_run_rows(
    session: AsyncSession,
    workspace_id: str,
    workflow_id: str | None,
    statuses: Sequence[str] | None,
    skip: int,
    limit: int,
) -> tuple[list[Any], int]:
    r = workflow_runs.c
    conditions = [r.workspace_id == workspace_id]
    if workflow_id is not None:
        conditions.append(r.workflow_id == workflow_id)
    if statuses:
        conditions.append(r.status.in_(list(statuses)))
    total = (await session.execute(select(func.count()).select_from(workflow_runs).where(*conditions))).scalar_one()
    rows = (
        await session.execute(
            select(workflow_runs).where(*conditions).order_by(r.created_at.desc()).offset(skip).limit(limit)
        )
    ).all()
    return list(rows), int(total)


async def execution_progress(session: AsyncSession, execution_ids: Sequence[str]) -> dict[str, tuple[int, int, str]]:
    if not execution_ids:
        return {}
    e = executions.c
    rows = (
        await session.execute(
            select(e.execution_id, e.finished_steps, e.total_steps, e.status).where(
                e.execution_id.in_(list(execution_ids))
            )
        )
    ).all()
    return {r.execution_id: (int(r.finished_steps), int(r.total_steps), str(r.status)) for r in rows}


async def execution_row(session: AsyncSession, execution_id: str) -> Any:
    return (await session.execute(select(executions).where(executions.c.execution_id == execution_id))).first()


async def run_status_counts(session: AsyncSession, workspace_id: str) -> dict[str, int]:
    r = workflow_runs.c
    rows = (
        await session.execute(select(r.status, func.count()).where(r.workspace_id == workspace_id).group_by(r.status))
    ).all()
    return {str(status): int(count) for status, count in rows}


async def count_workflows(session: AsyncSession, workspace_id: str) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).select_from(workflows).where(workflows.c.workspace_id == workspace_id)
            )
        ).scalar_one()
    )


# ---------------------------------------------------------------- leases
def _expires(ttl_s: float) -> Any:
    return text("now() + make_interval(secs => :ttl)").bindparams(bindparam("ttl", ttl_s, type_=Float))


async def claim_new_lease(session: AsyncSession, run_id: str, workspace_id: str, owner: str, ttl_s: float) -> bool:
    result = await session.execute(
        pg_insert(workflow_leases)
        .values(run_id=run_id, workspace_id=workspace_id, owner=owner, expires_at=_expires(ttl_s))
        .on_conflict_do_nothing()
        .returning(workflow_leases.c.run_id)
    )
    return result.first() is not None


async def heartbeat_lease(session: AsyncSession, run_id: str, owner: str, ttl_s: float) -> bool:
    l = workflow_leases.c  # noqa: E741
    result = await session.execute(
        update(workflow_leases)
        .where(l.run_id == run_id, l.owner == owner, ~l.finished)
        .values(expires_at=_expires(ttl_s))
        .returning(l.run_id)
    )
    return result.first() is not None


async def lease_is_mine(session: AsyncSession, run_id: str, owner: str) -> bool:
    row = (
        await session.execute(
            select(workflow_leases.c.owner, workflow_leases.c.finished)
            .where(workflow_leases.c.run_id == run_id)
            .with_for_update()
        )
    ).first()
    return row is not None and row.owner == owner and not row.finished


async def finish_lease(session: AsyncSession, run_id: str) -> None:
    await session.execute(update(workflow_leases).where(workflow_leases.c.run_id == run_id).values(finished=True))


async def release_lease(session: AsyncSession, run_id: str, owner: str) -> None:
    l = workflow_leases.c  # noqa: E741
    await session.execute(
        update(workflow_leases)
        .where(l.run_id == run_id, l.owner == owner, ~l.finished)
        .values(expires_at=text("now() - interval '1 second'"))
    )


async def claim_expired_leases(session: AsyncSession, owner: str, ttl_s: float, limit: int = 20) -> list[str]:
    result = await session.execute(
        text(
            """
            UPDATE workflow_run_leases SET owner = :owner, expires_at = now() + make_interval(secs => :ttl),
                   claims = claims + 1
            WHERE run_id IN (
                SELECT run_id FROM workflow_run_leases WHERE NOT finished AND expires_at < now()
                ORDER BY expires_at FOR UPDATE SKIP LOCKED LIMIT :limit)
            RETURNING run_id
            """
        ).bindparams(bindparam("ttl", ttl_s, type_=Float), owner=owner, limit=limit)
    )
    return [row[0] for row in result.all()]


# ---------------------------------------------------------------- memory
async def store_memory(
    session: AsyncSession, *, run_id: str, workspace_id: str, workflow_id: str, task: str, content: str, at: datetime
) -> None:
    await session.execute(
        pg_insert(workflow_memory)
        .values(
            run_id=run_id, workspace_id=workspace_id, workflow_id=workflow_id, task=task, content=content, created_at=at
        )
        .on_conflict_do_nothing()
    )


def _or_query(text_query: str) -> Any:
    # A memory sharing some of the words is relevant too: OR them. websearch syntax never fails to parse.
    words = re.findall(r"\w+", text_query)[:MAX_QUERY_WORDS]
    return func.websearch_to_tsquery("english", " or ".join(words))


async def search_memory(
    session: AsyncSession, workspace_id: str, query: str, *, exclude_run: str | None = None, limit: int = 3
) -> list[dict[str, Any]]:
    m = workflow_memory.c
    tsquery = _or_query(query)
    rank = func.ts_rank(m.search, tsquery)
    conditions = [m.workspace_id == workspace_id, m.search.op("@@")(tsquery)]
    if exclude_run:
        conditions.append(m.run_id != exclude_run)
    rows = (
        await session.execute(
            select(m.run_id, m.workflow_id, m.task, m.content, m.created_at, rank.label("rank"))
            .where(*conditions)
            .order_by(rank.desc(), m.created_at.desc())
            .limit(limit)
        )
    ).all()
    return [
        {
            "run_id": r.run_id,
            "workflow_id": r.workflow_id,
            "task": r.task,
            "snippet": r.content[:600],
            "rank": round(float(r.rank), 6),
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


# ---------------------------------------------------------------- quality service signals, agents
# The quality service's verdicts arrive with every execution: SQL text, prepared once per connection, not
# an expression built per event.
_RECORD_SIGNAL = (
    "INSERT INTO workflow_quality_signals (execution_id, kind, workspace_id, recipe_id, payload) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
)
_SAVE_AGENT_METRICS = (
    "INSERT INTO workflow_agent_metrics (agent_id, workspace_id, metrics, version) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (agent_id) DO UPDATE SET metrics = excluded.metrics, version = excluded.version "
    "WHERE workflow_agent_metrics.version < excluded.version"
)


async def record_signal(
    session: AsyncSession, *, execution_id: str, kind: str, workspace_id: str, recipe_id: str, payload: dict[str, Any]
) -> None:
    await driver.execute(session, _RECORD_SIGNAL, execution_id, kind, workspace_id, recipe_id, jsontext.dumps(payload))


async def get_signal(session: AsyncSession, execution_id: str, kind: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(quality_signals.c.payload).where(
                quality_signals.c.execution_id == execution_id, quality_signals.c.kind == kind
            )
        )
    ).first()
    return dict(row.payload) if row is not None else None


async def latest_suggestions(session: AsyncSession, workspace_id: str, recipe_id: str) -> list[Suggestion]:
    """The suggestions of the recipe's latest LearningRecorded (its payload, without learning_data, is the signal)."""
    q = quality_signals.c
    row = (
        await session.execute(
            select(q.payload)
            .where(q.workspace_id == workspace_id, q.recipe_id == recipe_id, q.kind == "learning")
            .order_by(q.recorded_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return []
    return [Suggestion.model_validate(s) for s in row.payload.get("suggestions") or [] if isinstance(s, dict)]


async def save_agent_metrics(
    session: AsyncSession, agent_id: str, workspace_id: str, metrics: dict[str, Any], version: int
) -> None:
    await driver.execute(session, _SAVE_AGENT_METRICS, agent_id, workspace_id, jsontext.dumps(metrics), version)


async def workspace_agents(
    session: AsyncSession, workspace_id: str
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    live = [agent_replicas.c.workspace_id == workspace_id]
    if "deleted" in agent_replicas.c:
        # Replicas that keep tombstones of removed agents.
        live.append(agent_replicas.c.deleted.is_(False))
    agents = [dict(r.agent) for r in (await session.execute(select(agent_replicas.c.agent).where(*live))).all()]
    metrics = {
        r.agent_id: dict(r.metrics)
        for r in (
            await session.execute(
                select(agent_metrics.c.agent_id, agent_metrics.c.metrics).where(
                    agent_metrics.c.workspace_id == workspace_id
                )
            )
        ).all()
    }
    return agents, metrics

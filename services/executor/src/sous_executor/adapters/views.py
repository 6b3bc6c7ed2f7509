"""Reads of the executor: one execution, a recipe's executions, active runs and the dashboard.

Queries of the read models only (no events, no locks); the use cases live in handlers.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_executor.adapters import repositories as repo
from sous_executor.adapters.quality_scores import QualityScores
from sous_executor.adapters.tables import executions, recipe_replicas
from sous_executor.config import ExecutorSettings
from sous_service.db import snapshot_session
from sous_service.domain_errors import NotFound
from sous_service.internal_context import InternalContext
from sous_service.statement_pool import StatementPool

FINISHED = ("completed", "failed", "cancelled")
_RECIPE_OF = "SELECT recipe_id FROM executions WHERE workspace_id = $1 AND execution_id = $2"
# Fetches a recipe the replica does not hold yet (from the catalog), to tell "no runs" from "no recipe".
RecipeLoader = Callable[[str, str], Awaitable[dict[str, Any] | None]]


async def owned_execution(session: AsyncSession, workspace_id: str, template_id: str, execution_id: str) -> Any:
    """The execution's read-model row, when it belongs to that recipe in that workspace (else not found)."""
    row = await repo.get_execution_row(session, workspace_id, execution_id)
    if row is None or row.recipe_id != template_id:
        raise NotFound("execution", execution_id)
    return row


class ExecutionViews:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: ExecutorSettings,
        *,
        statements: StatementPool,
        load_recipe: RecipeLoader,
        quality_scores: QualityScores,
    ) -> None:
        self.sessions = sessions
        self.statements = statements
        self.settings = settings
        self.load_recipe = load_recipe
        self.quality_scores = quality_scores

    async def require_execution(self, ctx: InternalContext, template_id: str, eid: str) -> Any:
        """The execution's row (not found unless it is of that recipe in the caller's workspace)."""
        async with self.sessions() as session:
            return await owned_execution(session, ctx.workspace_id, template_id, eid)

    async def require_listed(self, ctx: InternalContext, template_id: str, eid: str) -> None:
        """Not found unless the execution is of that recipe in the caller's workspace: what a live stream
        checks before it starts, as one statement outside a transaction reading one column."""
        recipe_id = await self.statements.fetchval(_RECIPE_OF, ctx.workspace_id, eid)
        if recipe_id is None or recipe_id != template_id:
            raise NotFound("execution", eid)

    async def get_execution(self, ctx: InternalContext, template_id: str, eid: str) -> dict[str, Any]:
        return repo.execution_view(await self.require_execution(ctx, template_id, eid))

    async def recipe_for_webhook(self, webhook_id: str) -> tuple[str, dict[str, Any]] | None:
        """(workspace, recipe) of the replicated recipe whose schedule_config names this webhook id."""
        async with self.sessions() as session:
            return await repo.find_recipe_by_webhook(session, webhook_id)

    async def list_executions(
        self, ctx: InternalContext, template_id: str, status: str | None, skip: int, limit: int
    ) -> dict[str, Any]:
        # The page and its total from one snapshot: a run started in between is in both or in neither.
        async with snapshot_session(self.sessions) as session:
            recipe = await repo.get_recipe(session, ctx.workspace_id, template_id)
            rows, total = await repo.list_execution_rows(session, ctx.workspace_id, template_id, status, skip, limit)
        if recipe is None and total == 0:
            recipe = await self.load_recipe(ctx.workspace_id, template_id)
            if recipe is None:
                raise NotFound("recipe", template_id)
        async with self.sessions() as session:
            score = await self.quality_scores.current(session, ctx.workspace_id, template_id, recipe)
        return {
            "items": [repo.execution_view(r) for r in rows],
            "total": total,
            "skip": skip,
            "limit": limit,
            "recipe_id": template_id,
            "recipe_quality_score": score,
        }

    async def active_workflows(self, ctx: InternalContext) -> dict[str, Any]:
        ws = ctx.workspace_id
        async with snapshot_session(self.sessions) as session:
            active = (
                await session.execute(
                    select(executions)
                    .where(executions.c.workspace_id == ws, executions.c.status.in_(repo.ACTIVE_STATUSES))
                    .order_by(executions.c.created_at.desc())
                    .limit(100)
                )
            ).all()
            recent = (
                await session.execute(
                    select(executions)
                    .where(executions.c.workspace_id == ws)
                    .order_by(executions.c.created_at.desc())
                    .limit(20)
                )
            ).all()
            total_runs = (
                await session.execute(
                    select(func.count()).select_from(executions).where(executions.c.workspace_id == ws)
                )
            ).scalar_one()

        def run_view(row: Any) -> dict[str, Any]:
            m = row._mapping
            total = int(m["total_steps"]) or 0
            done = int(m["finished_steps"])
            running_steps = [s["step_id"] for s in m["step_results"] if s.get("status") == "running"]
            return {
                "execution_id": m["execution_id"],
                "recipe_id": m["recipe_id"],
                "recipe_name": m["recipe_name"],
                "status": m["status"],
                "progress": round(done / total, 4) if total else 0.0,
                "progress_percent": round(100 * done / total, 1) if total else 0.0,
                "finished_steps": done,
                "total_steps": total,
                "current_steps": running_steps,
                "triggered_by": m["triggered_by"],
                "created_at": m["created_at"].isoformat(),
                "started_at": m["started_at"].isoformat() if m["started_at"] else None,
                "completed_at": m["completed_at"].isoformat() if m["completed_at"] else None,
                "total_tokens": m["total_tokens"],
                "total_cost_usd": m["total_cost_usd"],
                "error_message": m["error_message"],
            }

        limit = self.settings.max_concurrent_executions_per_workspace
        running = sum(1 for r in active if r.status == "running")
        return {
            "active_workflows": [run_view(r) for r in active],
            "recipe_runs": [run_view(r) for r in recent],
            "total_active": len(active),
            "total_recipe_runs": int(total_runs),
            "system_load": {
                "running": running,
                "pending": len(active) - running,
                "limit": limit,
                "utilization": round(len(active) / limit, 4),
            },
            "last_updated": datetime.now(UTC).isoformat(),
        }

    async def dashboard(self, ctx: InternalContext) -> dict[str, Any]:
        ws = ctx.workspace_id
        now = datetime.now(UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        since = today - timedelta(days=29)
        e = executions.c
        async with snapshot_session(self.sessions) as session:
            by_status: dict[str, int] = dict(
                (
                    await session.execute(select(e.status, func.count()).where(e.workspace_id == ws).group_by(e.status))
                ).all()
            )
            perf = (
                await session.execute(
                    select(
                        func.avg(e.total_duration_ms),
                        func.percentile_cont(0.5).within_group(e.total_duration_ms),
                        func.percentile_cont(0.95).within_group(e.total_duration_ms),
                        func.coalesce(func.sum(e.total_tokens), 0),
                        func.coalesce(func.sum(e.total_cost_usd), 0.0),
                    ).where(e.workspace_id == ws, e.status.in_(FINISHED))
                )
            ).one()
            today_rows: dict[str, int] = dict(
                (
                    await session.execute(
                        select(e.status, func.count())
                        .where(e.workspace_id == ws, e.created_at >= today)
                        .group_by(e.status)
                    )
                ).all()
            )
            today_usage = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(e.total_tokens), 0), func.coalesce(func.sum(e.total_cost_usd), 0.0)
                    ).where(e.workspace_id == ws, e.created_at >= today)
                )
            ).one()
            day = func.date_trunc("day", e.created_at)
            trends = (
                await session.execute(
                    select(day, e.status, func.count())
                    .where(e.workspace_id == ws, e.created_at >= since)
                    .group_by(day, e.status)
                )
            ).all()
            types = (
                await session.execute(
                    select(e.triggered_by, func.count()).where(e.workspace_id == ws).group_by(e.triggered_by)
                )
            ).all()
            mode = e.execution_metadata.op("->>")(literal_column("'mode'"))
            modes = (await session.execute(select(mode, func.count()).where(e.workspace_id == ws).group_by(mode))).all()
            recent = (
                await session.execute(
                    select(executions).where(e.workspace_id == ws).order_by(e.created_at.desc()).limit(10)
                )
            ).all()
            recipes = (
                await session.execute(
                    select(func.count())
                    .select_from(recipe_replicas)
                    .where(recipe_replicas.c.workspace_id == ws, ~recipe_replicas.c.deleted)
                )
            ).scalar_one()
        total = sum(int(v) for v in by_status.values())
        finished = sum(int(by_status.get(s, 0)) for s in FINISHED)
        completed = int(by_status.get("completed", 0))
        trend_map: dict[str, dict[str, int]] = {}
        for i in range(30):
            key = (since + timedelta(days=i)).date().isoformat()
            trend_map[key] = {"total": 0, "completed": 0, "failed": 0, "cancelled": 0}
        for bucket, status, count in trends:
            key = bucket.date().isoformat()
            if key in trend_map:
                trend_map[key]["total"] += int(count)
                if status in trend_map[key]:
                    trend_map[key][status] += int(count)
        today_total = sum(int(v) for v in today_rows.values())
        return {
            "overview": {
                "total_recipes": int(recipes),
                "total_executions": total,
                "active_executions": int(by_status.get("running", 0)) + int(by_status.get("pending", 0)),
                "completed_executions": completed,
                "failed_executions": int(by_status.get("failed", 0)),
                "cancelled_executions": int(by_status.get("cancelled", 0)),
                "success_rate": round(completed / finished, 4) if finished else 0.0,
            },
            "today_stats": {
                "executions": today_total,
                "completed": int(today_rows.get("completed", 0)),
                "failed": int(today_rows.get("failed", 0)),
                "running": int(today_rows.get("running", 0)) + int(today_rows.get("pending", 0)),
                "tokens": int(today_usage[0]),
                "cost_usd": round(float(today_usage[1]), 6),
            },
            "performance": {
                "avg_duration_ms": round(float(perf[0]), 3) if perf[0] is not None else 0.0,
                "p50_duration_ms": round(float(perf[1]), 3) if perf[1] is not None else 0.0,
                "p95_duration_ms": round(float(perf[2]), 3) if perf[2] is not None else 0.0,
                "total_tokens": int(perf[3]),
                "total_cost_usd": round(float(perf[4]), 6),
            },
            "workflow_types": {
                "by_trigger": {str(k): int(v) for k, v in types},
                "by_mode": {str(k or "sequential"): int(v) for k, v in modes},
            },
            "execution_trends": [{"date": k, **v} for k, v in trend_map.items()],
            "recent_activity": [
                {
                    "execution_id": r.execution_id,
                    "recipe_id": r.recipe_id,
                    "recipe_name": r.recipe_name,
                    "status": r.status,
                    "triggered_by": r.triggered_by,
                    "created_at": r.created_at.isoformat(),
                    "completed_at": r.completed_at.isoformat() if r.completed_at else None,
                }
                for r in recent
            ],
            "last_updated": now.isoformat(),
        }

"""Use cases: start, cancel and rerun executions; keep the catalog replicas; the views."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Actor, Envelope
from sous_events.events.executor import ExecutionCancelRequested, ExecutionRequested
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, EventStore
from sous_executor.adapters import repositories as repo
from sous_executor.adapters.catalog_client import CatalogClient
from sous_executor.adapters.execution_stream import AGGREGATE, PRODUCER
from sous_executor.adapters.leases import Leases
from sous_executor.adapters.quality_scores import QualityScores
from sous_executor.adapters.tables import executions, recipe_replicas
from sous_executor.config import ExecutorSettings
from sous_executor.domain.execution import Execution
from sous_executor.domain.inputs import resolve_inputs
from sous_executor.domain.output_checks import referenced_agents
from sous_executor.domain.planning import build_plan, parse_steps
from sous_executor.engine.step_engine import StepEngine
from sous_executor.quotas import check_graph, check_runs_per_day, quota_for, with_budget
from sous_service.errors import ApiError, InputInvalid, not_found
from sous_service.internal_context import InternalContext
from sous_service.owner_reads import OwnerReads

FINISHED = ("completed", "failed", "cancelled")


def actor_of(ctx: InternalContext) -> Actor:
    return Actor(user_id=ctx.user_id, auth_type=ctx.auth_type)


def _lock_key(workspace_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"sous-exec-ws:{workspace_id}".encode()).digest()[:8], "big", signed=True)


class ExecutorService:
    def __init__(
        self,
        *,
        settings: ExecutorSettings,
        sessions: async_sessionmaker[AsyncSession],
        store: EventStore,
        catalog: CatalogClient,
        engine: StepEngine,
        quality_scores: QualityScores | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.catalog = catalog
        self.engine = engine
        self.quality_scores = quality_scores or QualityScores(OwnerReads("", "", "quality", reader="executor"))
        self.leases: Leases = engine.leases

    # ------------------------------------------------------------ replicas
    async def apply_catalog_event(self, session: AsyncSession, envelope: Envelope) -> None:
        p = envelope.payload
        t = envelope.event_type
        if t in ("RecipeCreated", "RecipeUpdated"):
            recipe = dict(p["recipe"])
            workspace = str(recipe.get("workspace_id") or envelope.workspace_id)
            revision = int(recipe.get("revision") or envelope.aggregate_version)
            await repo.upsert_recipe(session, workspace, recipe, revision)
        elif t == "RecipeDeleted":
            await repo.delete_recipe(
                session, envelope.workspace_id, str(p["recipe_id"]), str(p.get("template_id") or "")
            )
        elif t in ("AgentRegistered", "AgentUpdated"):
            agent = dict(p["agent"])
            revision = int(agent.get("revision") or envelope.aggregate_version)
            await repo.upsert_agent(session, str(agent.get("workspace_id") or envelope.workspace_id), agent, revision)
        elif t == "AgentRemoved":
            await repo.delete_agent(session, str(p["agent_id"]), envelope.workspace_id)

    async def load_recipe(self, workspace_id: str, template_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            recipe = await repo.get_recipe(session, workspace_id, template_id)
        if recipe is not None:
            return recipe
        recipe = await self.catalog.recipe(workspace_id, template_id)
        if recipe is not None:
            async with self.sessions() as session, session.begin():
                # A stale answer (older than the replica, or of a deleted recipe) loses to what is stored.
                if not await repo.upsert_recipe(session, workspace_id, recipe, int(recipe.get("revision") or 0)):
                    return await repo.get_recipe(session, workspace_id, template_id)
        return recipe

    async def load_agents(self, workspace_id: str, recipe: dict[str, Any]) -> dict[str, dict[str, Any]]:
        ids = sorted(referenced_agents(recipe.get("steps") or []))
        async with self.sessions() as session:
            agents = await repo.get_agents(session, workspace_id, ids)
        for agent_id in ids:
            if agent_id not in agents:
                fetched = await self.catalog.agent(workspace_id, agent_id)
                if fetched is not None:
                    async with self.sessions() as session, session.begin():
                        # A stale answer (of a removed agent) loses to the replica's tombstone.
                        if await repo.upsert_agent(session, workspace_id, fetched, int(fetched.get("revision") or 0)):
                            agents[agent_id] = fetched
                        else:
                            agents.update(await repo.get_agents(session, workspace_id, [agent_id]))
        return agents

    # ------------------------------------------------------------ start
    async def execute(
        self,
        ctx: InternalContext,
        template_id: str,
        input_data: dict[str, Any] | None,
        *,
        triggered_by: str = "manual",
        workspace_id: str | None = None,
    ) -> dict[str, Any]:
        workspace = workspace_id if workspace_id is not None else ctx.workspace_id
        recipe = await self.load_recipe(workspace, template_id)
        if recipe is None:
            raise not_found("recipe", template_id)
        agents = await self.load_agents(workspace, recipe)
        async with self.sessions() as session, session.begin():
            return await self.start_in(
                session, workspace, recipe, agents, input_data, triggered_by=triggered_by, actor=actor_of(ctx)
            )

    async def start_in(
        self,
        session: AsyncSession,
        workspace_id: str,
        recipe: dict[str, Any],
        agents: dict[str, dict[str, Any]],
        input_data: dict[str, Any] | None,
        *,
        triggered_by: str,
        actor: Actor,
        rerun_of: str | None = None,
        from_step: str | None = None,
        reused_results: list[dict[str, Any]] | None = None,
        step_overrides: dict[str, dict[str, Any]] | None = None,
        execution_id: str | None = None,
    ) -> dict[str, Any]:
        """Validate and append ExecutionRequested with its read-model row, in the caller's transaction."""
        steps = recipe.get("steps") or []
        check_graph(recipe, self.settings)
        quota = quota_for(self.settings, workspace_id)
        recipe = with_budget(recipe, quota)
        data = resolve_inputs(recipe.get("inputs") or {}, input_data, missing_text_as_empty=True)
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_lock_key(workspace_id)))
        active = await repo.count_active(session, workspace_id)
        limit = self.settings.max_concurrent_executions_per_workspace
        if active >= limit:
            error = ApiError(
                429,
                "concurrency_limit",
                f"this workspace already runs {active} executions (limit {limit})",
                limits={"max_concurrent_executions": limit, "active_executions": active},
            )
            error.headers["Retry-After"] = "5"
            raise error
        await check_runs_per_day(session, workspace_id, quota)
        execution_id = execution_id or new_id()
        envelope = make_event(
            ExecutionRequested(
                execution_id=execution_id,
                recipe_id=str(recipe["template_id"]),
                recipe=recipe,
                agents=agents,
                input_data=data,
                triggered_by=triggered_by,
                rerun_of=rerun_of,
                from_step=from_step,
                reused_results=reused_results or [],
                step_overrides=step_overrides or {},
            ),
            producer=PRODUCER,
            workspace_id=workspace_id,
            aggregate_id=execution_id,
            aggregate_version=1,
            correlation_id=execution_id,
            actor=actor,
        )
        await self.store.append(session, [envelope], expected_version=0)
        await repo.project_execution(session, Execution.from_events([envelope]))
        return {
            "recipe_execution_id": execution_id,
            "execution_id": execution_id,
            "recipe_id": str(recipe["template_id"]),
            "status": "started",
            "total_steps": len(steps),
            "message": f"Execution of recipe '{recipe.get('name') or recipe['template_id']}' started",
        }

    # ------------------------------------------------------------ runners (consumer)
    async def claim_requested(self, session: AsyncSession, envelope: Envelope) -> bool:
        return await self.leases.claim_new(session, envelope.aggregate_id, envelope.workspace_id)

    # ------------------------------------------------------------ cancel / rerun
    async def _owned_execution(self, session: AsyncSession, ctx: InternalContext, template_id: str, eid: str) -> Any:
        row = await repo.get_execution_row(session, ctx.workspace_id, eid)
        if row is None or row.recipe_id != template_id:
            raise not_found("execution", eid)
        return row

    async def cancel(self, ctx: InternalContext, template_id: str, eid: str, reason: str = "") -> dict[str, Any]:
        for _ in range(20):
            async with self.sessions() as session, session.begin():
                row = await self._owned_execution(session, ctx, template_id, eid)
                if row.status in FINISHED:
                    raise ApiError(409, "conflict", f"execution '{eid}' already {row.status}")
                version = await self.store.current_version(session, AGGREGATE, eid)
                events = await self.store.load(session, AGGREGATE, eid)
                execution = Execution.from_events(events)
                if execution.cancel_requested:
                    return {"execution_id": eid, "status": "cancelling", "message": "cancellation already requested"}
                envelope = make_event(
                    ExecutionCancelRequested(execution_id=eid, reason=reason or "cancelled by user"),
                    producer=PRODUCER,
                    workspace_id=ctx.workspace_id,
                    aggregate_id=eid,
                    aggregate_version=version + 1,
                    correlation_id=execution.correlation_id,
                    actor=actor_of(ctx),
                )
                try:
                    await self.store.append(session, [envelope], expected_version=version)
                except ConcurrencyConflict:
                    continue
                execution.apply(envelope)
                await repo.project_execution(session, execution)
            self.engine.signal_cancel(eid)
            return {"execution_id": eid, "status": "cancelling", "message": "cancellation requested"}
        raise ApiError(409, "conflict", "the execution is changing too fast; retry")

    async def rerun(
        self,
        ctx: InternalContext,
        template_id: str,
        eid: str,
        from_step: str | None,
        step_overrides: dict[str, dict[str, Any]] | None,
    ) -> dict[str, Any]:
        async with self.sessions() as session:
            await self._owned_execution(session, ctx, template_id, eid)
            events = await self.store.load(session, AGGREGATE, eid)
        original = Execution.from_events(events)
        if not original.finished:
            raise ApiError(409, "conflict", f"execution '{eid}' is still {original.status}; rerun a finished one")
        specs = parse_steps(original.recipe.get("steps") or [])
        by_id = {s.step_id: s for s in specs}
        overrides = dict(step_overrides or {})
        for sid, override in overrides.items():
            if sid not in by_id:
                raise InputInvalid.single(f"step_overrides.{sid}", "unknown step")
            if not isinstance(override, dict) or not isinstance(override.get("prompt_template"), str):
                raise InputInvalid.single(f"step_overrides.{sid}.prompt_template", "a string is required")
        reused: list[dict[str, Any]] = []
        if from_step is not None:
            if from_step not in by_id:
                raise InputInvalid.single("from_step", f"unknown step '{from_step}'")
            plan = build_plan(specs, original.recipe.get("execution_config") or {})
            rerun_set = {s.step_id for s in specs if s.order >= by_id[from_step].order} | plan.descendants(from_step)
            rerun_set.add(from_step)
            for step in original.ordered_steps():
                if step.step_id not in rerun_set and step.status == "completed" and step.step_id not in overrides:
                    reused.append(step.result())
        async with self.sessions() as session, session.begin():
            return await self.start_in(
                session,
                ctx.workspace_id,
                original.recipe,
                original.agents,
                original.input_data,
                triggered_by="rerun",
                actor=actor_of(ctx),
                rerun_of=eid,
                from_step=from_step,
                reused_results=reused,
                step_overrides=overrides,
            )

    # ------------------------------------------------------------ views
    async def get_execution(self, ctx: InternalContext, template_id: str, eid: str) -> dict[str, Any]:
        async with self.sessions() as session:
            row = await self._owned_execution(session, ctx, template_id, eid)
        return repo.execution_view(row)

    async def list_executions(
        self, ctx: InternalContext, template_id: str, status: str | None, skip: int, limit: int
    ) -> dict[str, Any]:
        async with self.sessions() as session:
            recipe = await repo.get_recipe(session, ctx.workspace_id, template_id)
            rows, total = await repo.list_execution_rows(session, ctx.workspace_id, template_id, status, skip, limit)
        if recipe is None and total == 0:
            recipe = await self.load_recipe(ctx.workspace_id, template_id)
            if recipe is None:
                raise not_found("recipe", template_id)
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
        async with self.sessions() as session:
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
        async with self.sessions() as session:
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

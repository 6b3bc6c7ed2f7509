"""Use cases: keep the copies, assess, learn, keep agent metrics; read what callers ask for.

Every write that records a fact appends to the event store (and so the outbox) in the caller's
transaction, and updates the read models from the appended events (`apply_quality_event`), so a rebuild
from the store gives the same read models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.envelope import SYSTEM_ACTOR, Actor, Envelope, utcnow
from sous_events.events import (
    AgentMetricsUpdated,
    ExecutionFinished,
    ExecutionRequested,
    ExecutionStarted,
    LearningRecorded,
    QualityAssessed,
    RecipeCreated,
    RecipeDeleted,
    RecipeUpdated,
    StepCompleted,
    StepFailed,
    StepRetryScheduled,
    StepSkipped,
    StepStarted,
)
from sous_events.registry import make_event
from sous_events.store import EventStore
from sous_quality.adapters import repository as repo
from sous_quality.adapters.tables import agent_metrics, analyses, assessments, recipe_quality
from sous_quality.domain import learning, scoring
from sous_quality.domain.agents import AgentTotals
from sous_quality.domain.record import ExecutionRecord, record_from_copies
from sous_quality.domain.rolling import next_rolling_score

PRODUCER = "quality"
RECIPE_QUALITY = "RecipeQuality"
AGENT_METRICS = "AgentMetrics"


class ExecutionNotFound(Exception):
    pass


class ExecutionNotFinished(Exception):
    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"execution '{execution_id}' is {status}, not finished")
        self.status = status


class RecipeNotFound(Exception):
    pass


@dataclass(frozen=True)
class Cause:
    """Who and what caused a write: carried into the events' envelopes."""

    actor: Actor = SYSTEM_ACTOR
    correlation_id: str = ""
    causation_id: str = ""


def recipe_quality_id(workspace_id: str, template_id: str) -> str:
    return f"{workspace_id}:{template_id}"


def _iso(at: datetime) -> str:
    return at.isoformat()


class QualityService:
    def __init__(self, store: EventStore | None = None) -> None:
        self.store = store or EventStore()

    # --- catalog events --------------------------------------------------------------------------

    async def on_recipe_event(self, session: AsyncSession, envelope: Envelope) -> None:
        payload = envelope.typed()
        if isinstance(payload, (RecipeCreated, RecipeUpdated)):
            await repo.upsert_recipe(session, envelope.workspace_id, payload.recipe, envelope.occurred_at)
        elif isinstance(payload, RecipeDeleted):
            await repo.mark_recipe_deleted(session, envelope.workspace_id, payload.recipe_id, payload.template_id)

    # --- executor events -------------------------------------------------------------------------

    async def on_execution_event(self, session: AsyncSession, envelope: Envelope) -> None:
        payload = envelope.typed()
        ws, at = envelope.workspace_id, envelope.occurred_at
        if isinstance(payload, ExecutionRequested):
            await repo.record_requested(
                session,
                workspace_id=ws,
                execution_id=payload.execution_id,
                recipe_id=payload.recipe_id,
                recipe=payload.recipe,
                agents=payload.agents,
                input_data=payload.input_data,
                correlation_id=envelope.correlation_id,
                at=at,
            )
        elif isinstance(payload, ExecutionStarted):
            await repo.ensure_execution(session, ws, payload.execution_id, payload.recipe_id)
            await repo.record_started(session, payload.execution_id, at)
        elif isinstance(payload, StepStarted):
            await repo.upsert_step(
                session,
                payload.execution_id,
                payload.step_id,
                status="running",
                order=payload.order,
                attempts=payload.attempt,
                agent_id=payload.agent_id,
                agent_name=payload.agent_name,
            )
        elif isinstance(payload, StepCompleted):
            await repo.upsert_step(
                session,
                payload.execution_id,
                payload.step_id,
                status="completed",
                order=payload.order,
                attempts=payload.attempt,
                agent_id=payload.agent_id,
                agent_name=payload.agent_name,
                output=payload.output,
                duration_ms=payload.duration_ms,
                tokens=payload.tokens.total,
                cost_usd=payload.cost_usd,
                error=None,
            )
            if payload.agent_id and not payload.reused:
                await self._count_attempt(
                    session,
                    envelope,
                    payload.agent_id,
                    final=True,
                    success=True,
                    duration_ms=payload.duration_ms,
                    tokens=payload.tokens.total,
                    cost_usd=payload.cost_usd,
                )
        elif isinstance(payload, StepFailed):
            await repo.upsert_step(
                session,
                payload.execution_id,
                payload.step_id,
                status="failed",
                order=payload.order,
                attempts=payload.attempt,
                agent_id=payload.agent_id,
                agent_name=payload.agent_name,
                duration_ms=payload.duration_ms,
                tokens=payload.tokens.total,
                cost_usd=payload.cost_usd,
                error=payload.error,
            )
            if payload.agent_id:
                await self._count_attempt(
                    session,
                    envelope,
                    payload.agent_id,
                    final=not payload.will_retry,
                    success=False,
                    duration_ms=payload.duration_ms,
                    tokens=payload.tokens.total,
                    cost_usd=payload.cost_usd,
                )
        elif isinstance(payload, StepRetryScheduled):
            await repo.upsert_step(session, payload.execution_id, payload.step_id)
        elif isinstance(payload, StepSkipped):
            await repo.upsert_step(session, payload.execution_id, payload.step_id, status="skipped")
        elif isinstance(payload, ExecutionFinished):
            await self._on_finished(session, envelope, payload)

    async def _count_attempt(self, session: AsyncSession, cause: Envelope, agent_id: str, **attempt: Any) -> None:
        # Every change of an agent's totals is an event: counting here without appending would leave the
        # attempts since the last AgentMetricsUpdated only in the read model, and a rebuild would lose them.
        totals, _ = await repo.lock_agent(session, agent_id, cause.workspace_id)
        await self._append_agent_metrics(
            session,
            agent_id,
            cause.workspace_id,
            totals.with_attempt(**attempt),
            Cause(actor=cause.actor, correlation_id=cause.correlation_id, causation_id=cause.event_id),
        )

    async def _on_finished(self, session: AsyncSession, envelope: Envelope, payload: ExecutionFinished) -> None:
        await repo.ensure_execution(session, envelope.workspace_id, payload.execution_id, payload.recipe_id)
        for result in payload.step_results:
            step_id = str(result.get("step_id") or "")
            if not step_id:
                continue
            tokens = result.get("tokens_used") or {}
            values: dict[str, Any] = {
                "status": str(result.get("status") or "pending"),
                "order": int(result.get("order") or 0),
                "attempts": max(1, int(result.get("attempt") or 1)),
                "agent_id": str(result.get("agent_id") or ""),
                "agent_name": str(result.get("agent_name") or ""),
                "duration_ms": result.get("duration_ms"),
                "tokens": int(tokens.get("total") or 0) if isinstance(tokens, dict) and tokens else None,
                "cost_usd": float(result.get("cost_usd") or 0.0),
                "error": result.get("error"),
            }
            if "output" in result:
                # Summaries (ExecutionFinished.summary) leave outputs to the steps' StepCompleted events.
                values["output"] = result["output"]
            await repo.upsert_step(session, payload.execution_id, step_id, **values)
        row = await repo.get_execution(session, payload.execution_id)
        assert row is not None
        totals_raw = envelope.payload.get("totals") or {}
        duration = payload.totals.duration_ms if totals_raw.get("duration_ms") else None
        if duration is None:
            began = row["started_at"] or row["requested_at"]
            duration = (envelope.occurred_at - began).total_seconds() * 1000 if began else None
        steps = await repo.load_steps(session, payload.execution_id)
        tokens_total: int | None = payload.totals.tokens or sum(s.tokens or 0 for s in steps) or None
        await repo.record_finished(
            session,
            execution_id=payload.execution_id,
            status=payload.status,
            output_data=payload.output_data,
            error=payload.error,
            total_duration_ms=duration,
            total_tokens=tokens_total,
            total_cost_usd=payload.totals.cost_usd or sum(s.cost_usd for s in steps),
            at=envelope.occurred_at,
        )
        cause = Cause(actor=envelope.actor, correlation_id=envelope.correlation_id, causation_id=envelope.event_id)
        if await self._auto_learning(session, envelope.workspace_id, payload.recipe_id, row["recipe"]):
            await self.assess(session, envelope.workspace_id, payload.recipe_id, payload.execution_id, None, cause)
            await self.learn(session, envelope.workspace_id, payload.recipe_id, payload.execution_id, cause)

    async def _auto_learning(self, session: AsyncSession, workspace_id: str, template_id: str, snapshot: Any) -> bool:
        recipe = await repo.get_recipe(session, workspace_id, template_id)
        if recipe is not None and recipe["deleted"]:
            return False
        config = recipe["execution_config"] if recipe is not None else (snapshot or {}).get("execution_config")
        return bool((config or {}).get("auto_learning", True))

    async def _append_agent_metrics(
        self, session: AsyncSession, agent_id: str, workspace_id: str, totals: AgentTotals, cause: Cause
    ) -> None:
        """Append the agent's new totals and apply the event, so live and rebuilt read models agree."""
        version = await self.store.current_version(session, AGENT_METRICS, agent_id)
        event = make_event(
            AgentMetricsUpdated(agent_id=agent_id, metrics=totals.metrics()),
            producer=PRODUCER,
            workspace_id=workspace_id,
            aggregate_id=agent_id,
            aggregate_version=version + 1,
            correlation_id=cause.correlation_id,
            causation_id=cause.causation_id,
            actor=cause.actor,
        )
        await self.store.append(session, [event], expected_version=version)
        await apply_quality_event(session, event)

    # --- assessing and learning ------------------------------------------------------------------

    async def _finished_execution(
        self, session: AsyncSession, workspace_id: str, template_id: str, execution_id: str
    ) -> RowMapping:
        row = await repo.find_execution(session, workspace_id, template_id, execution_id)
        if row is None:
            raise ExecutionNotFound(execution_id)
        recipe = await repo.get_recipe(session, workspace_id, template_id)
        if recipe is not None and recipe["deleted"]:
            raise ExecutionNotFound(execution_id)
        return row

    async def build_record(self, session: AsyncSession, row: RowMapping) -> ExecutionRecord:
        copy = await repo.get_recipe(session, row["workspace_id"], row["recipe_id"])
        snapshot: dict[str, Any] = row["recipe"] or {}
        recipe: dict[str, Any] = dict(snapshot)
        if copy is not None:
            recipe.update(steps=copy["steps"], outputs=copy["outputs"], execution_config=copy["execution_config"])
        return record_from_copies(
            execution_id=row["execution_id"],
            recipe_id=row["recipe_id"],
            status=row["status"],
            steps=await repo.load_steps(session, row["execution_id"]),
            recipe=recipe,
            output_data=row["output_data"],
            error_message=row["error"],
            total_duration_ms=row["total_duration_ms"],
            total_tokens=row["total_tokens"],
            total_cost_usd=row["total_cost_usd"],
            input_data=row["input_data"],
            snapshot_inputs=snapshot.get("inputs") if "inputs" in snapshot else None,
        )

    async def assess(
        self,
        session: AsyncSession,
        workspace_id: str,
        template_id: str,
        execution_id: str,
        learnings: list[dict[str, Any]] | None,
        cause: Cause,
    ) -> dict[str, Any]:
        row = await self._finished_execution(session, workspace_id, template_id, execution_id)
        stored = await repo.get_assessment(session, workspace_id, execution_id)
        if stored is not None:
            return assessment_view(stored)
        if row["status"] not in ("completed", "failed", "cancelled"):
            raise ExecutionNotFinished(execution_id, row["status"])
        quality = await repo.lock_recipe_quality(session, workspace_id, template_id)
        stored = await repo.get_assessment(session, workspace_id, execution_id)
        if stored is not None:  # assessed by a concurrent writer while we waited for the lock
            return assessment_view(stored)
        record = await self.build_record(session, row)
        patterns = learnings if learnings is not None else learning.patterns(record)
        result = scoring.assess(record, patterns)
        rolling = next_rolling_score(quality["quality_score"], result.quality_score)
        payload = QualityAssessed(
            recipe_id=template_id,
            execution_id=execution_id,
            quality_score=result.quality_score,
            rolling_score=rolling,
            breakdown=result.breakdown,
            grade=result.grade,
            bottlenecks=result.bottlenecks,
        )
        await self._record(session, payload, workspace_id, template_id, row, cause)
        stored = await repo.get_assessment(session, workspace_id, execution_id)
        assert stored is not None
        return assessment_view(stored)

    async def _record(
        self,
        session: AsyncSession,
        payload: QualityAssessed | LearningRecorded,
        workspace_id: str,
        template_id: str,
        row: Any,
        cause: Cause,
        occurred_at: datetime | None = None,
    ) -> None:
        """Append one event to the recipe's quality stream and apply it to the read model."""
        aggregate_id = recipe_quality_id(workspace_id, template_id)
        version = await self.store.current_version(session, RECIPE_QUALITY, aggregate_id)
        event = make_event(
            payload,
            producer=PRODUCER,
            workspace_id=workspace_id,
            aggregate_id=aggregate_id,
            aggregate_version=version + 1,
            correlation_id=cause.correlation_id or row["correlation_id"],
            causation_id=cause.causation_id,
            actor=cause.actor,
        )
        if occurred_at is not None:
            event = event.model_copy(update={"occurred_at": occurred_at})
        await self.store.append(session, [event], expected_version=version)
        await apply_quality_event(session, event)

    async def learn(
        self, session: AsyncSession, workspace_id: str, template_id: str, execution_id: str, cause: Cause
    ) -> dict[str, Any]:
        row = await self._finished_execution(session, workspace_id, template_id, execution_id)
        stored = await repo.get_analysis(session, workspace_id, execution_id)
        if stored is not None:
            return analysis_view(stored)
        if row["status"] not in ("completed", "failed", "cancelled"):
            raise ExecutionNotFinished(execution_id, row["status"])
        quality = await repo.lock_recipe_quality(session, workspace_id, template_id)
        stored = await repo.get_analysis(session, workspace_id, execution_id)
        if stored is not None:
            return analysis_view(stored)
        record = await self.build_record(session, row)
        analysis = learning.analyse(record)
        analyzed_at = utcnow()
        learning_data = learning.updated_learning_data(
            quality["learning_data"], execution_id=execution_id, analyzed_at=_iso(analyzed_at), analysis=analysis
        )
        payload = LearningRecorded(
            recipe_id=template_id,
            execution_id=execution_id,
            patterns=analysis.patterns,
            suggestions=analysis.suggestions,
            performance_metrics=analysis.performance_metrics,
            learning_data=learning_data,
        )
        await self._record(session, payload, workspace_id, template_id, row, cause, occurred_at=analyzed_at)
        stored = await repo.get_analysis(session, workspace_id, execution_id)
        assert stored is not None
        return analysis_view(stored)

    # --- reads -----------------------------------------------------------------------------------

    async def _known_recipe(self, session: AsyncSession, workspace_id: str, template_id: str) -> RowMapping | None:
        """The recipe's quality row; RecipeNotFound when the workspace knows nothing of this recipe."""
        recipe = await repo.get_recipe(session, workspace_id, template_id)
        quality = await repo.get_recipe_quality(session, workspace_id, template_id)
        if (recipe is None and quality is None) or (recipe is not None and recipe["deleted"]):
            raise RecipeNotFound(template_id)
        return quality

    async def suggestions(self, session: AsyncSession, workspace_id: str, template_id: str) -> dict[str, Any]:
        quality = await self._known_recipe(session, workspace_id, template_id)
        data: dict[str, Any] = (quality["learning_data"] if quality is not None else None) or {}
        return {
            "recipe_id": template_id,
            "quality_score": quality["quality_score"] if quality is not None else None,
            "suggestions": data.get("latest_suggestions", []),
            "patterns": data.get("latest_patterns", []),
            "performance_metrics": data.get("latest_performance", {}),
            "last_analyzed_at": data.get("last_analyzed_at"),
            "analysis_count": await repo.count_analyses(session, workspace_id, template_id),
        }

    async def history(self, session: AsyncSession, workspace_id: str, template_id: str, limit: int) -> dict[str, Any]:
        quality = await self._known_recipe(session, workspace_id, template_id)
        rows = await repo.list_assessments(session, workspace_id, template_id, limit)
        return {
            "recipe_id": template_id,
            "quality_score": quality["quality_score"] if quality is not None else None,
            "assessment_count": quality["assessment_count"] if quality is not None else 0,
            "points": [
                {
                    "execution_id": r["execution_id"],
                    "assessed_at": _iso(r["assessed_at"]),
                    "quality_score": r["quality_score"],
                    "rolling_score": r["rolling_score"],
                    "grade": r["grade"],
                    "breakdown": r["breakdown"],
                    "recipe_revision": r["recipe_revision"],
                    "models": r["models"],
                }
                for r in rows
            ],
        }


def assessment_view(row: RowMapping) -> dict[str, Any]:
    return {
        "execution_id": row["execution_id"],
        "recipe_id": row["recipe_id"],
        "assessed_at": _iso(row["assessed_at"]),
        "quality_score": row["quality_score"],
        "rolling_score": row["rolling_score"],
        "breakdown": row["breakdown"],
        "grade": row["grade"],
        "bottlenecks": row["bottlenecks"],
    }


def analysis_view(row: RowMapping) -> dict[str, Any]:
    return {
        "execution_id": row["execution_id"],
        "recipe_id": row["recipe_id"],
        "analyzed_at": _iso(row["analyzed_at"]),
        "patterns": row["patterns"],
        "suggestions": row["suggestions"],
        "performance_metrics": row["performance_metrics"],
    }


def _models(execution: RowMapping | None) -> list[str]:
    if execution is None:
        return []
    agents: dict[str, Any] = execution["agents"] or {}
    found = set()
    for agent in agents.values():
        config = (agent or {}).get("model_config") or {}
        if config.get("model_id"):
            found.add(str(config["model_id"]))
    return sorted(found)


async def apply_quality_event(session: AsyncSession, envelope: Envelope) -> None:
    """Project one of this service's own events into its read models (live and on rebuild)."""
    payload = envelope.typed()
    ws = envelope.workspace_id
    if isinstance(payload, QualityAssessed):
        execution = await repo.get_execution(session, payload.execution_id)
        revision = (execution["recipe"] or {}).get("revision") if execution is not None else None
        await repo.insert_assessment(
            session,
            execution_id=payload.execution_id,
            workspace_id=ws,
            recipe_id=payload.recipe_id,
            assessed_at=envelope.occurred_at,
            quality_score=payload.quality_score,
            rolling_score=payload.rolling_score,
            breakdown=payload.breakdown,
            grade=payload.grade,
            bottlenecks=payload.bottlenecks,
            recipe_revision=int(revision) if isinstance(revision, int) else None,
            models=_models(execution),
        )
        current = await repo.get_recipe_quality(session, ws, payload.recipe_id)
        await repo.save_recipe_quality(
            session,
            ws,
            payload.recipe_id,
            quality_score=payload.rolling_score,
            assessment_count=(current["assessment_count"] if current is not None else 0) + 1,
            learning_data=current["learning_data"] if current is not None else {},
            version=envelope.aggregate_version,
        )
    elif isinstance(payload, LearningRecorded):
        await repo.insert_analysis(
            session,
            execution_id=payload.execution_id,
            workspace_id=ws,
            recipe_id=payload.recipe_id,
            analyzed_at=envelope.occurred_at,
            patterns=payload.patterns,
            suggestions=payload.suggestions,
            performance_metrics=payload.performance_metrics,
        )
        current = await repo.get_recipe_quality(session, ws, payload.recipe_id)
        await repo.save_recipe_quality(
            session,
            ws,
            payload.recipe_id,
            quality_score=current["quality_score"] if current is not None else None,
            assessment_count=current["assessment_count"] if current is not None else 0,
            learning_data=payload.learning_data,
            version=envelope.aggregate_version,
        )
    elif isinstance(payload, AgentMetricsUpdated):
        m = payload.metrics
        runs = int(m.get("runs", 0))
        totals = AgentTotals(
            runs=runs,
            successes=int(m.get("successes", 0)),
            total_duration_ms=float(m.get("total_duration_ms", float(m.get("mean_duration_ms", 0.0)) * runs)),
            total_tokens=int(m.get("total_tokens", 0)),
            total_cost_usd=float(m.get("total_cost_usd", 0.0)),
        )
        await repo.lock_agent(session, payload.agent_id, ws)
        await repo.save_agent(session, payload.agent_id, totals, version=envelope.aggregate_version)


async def reset_quality_models(session: AsyncSession) -> None:
    """Empty the read models built from this service's own events (copies of others' events stay)."""
    for table in (assessments, analyses, recipe_quality, agent_metrics):
        await session.execute(delete(table))

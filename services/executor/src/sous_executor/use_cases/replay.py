"""What-if replay: run a new version of a recipe (or step overrides) against a past execution, then diff.

The replay is an ordinary execution (`triggered_by: replay`, `rerun_of`: the past one) started through the
rerun machinery: the steps the replay plan reuses enter as reused results (no model call), the others run.
The report is computed when asked, from the two executions' event streams and the quality service's
assessments (QualityAssessed, which the executor keeps per execution).
"""

from __future__ import annotations

from typing import Any

from sous_executor.adapters import repositories as repo
from sous_executor.adapters.execution_stream import AGGREGATE
from sous_executor.commands import StartExecution
from sous_executor.domain.execution import Execution
from sous_executor.domain.output_checks import referenced_agents
from sous_executor.domain.output_diff import StepRecord, Usage, replay_diff
from sous_executor.domain.outputs import summary_result
from sous_executor.domain.planning import PlanError
from sous_executor.domain.replay_plan import apply_overrides, changed_steps, plan_replay
from sous_executor.handlers import FINISHED, ExecutorService
from sous_executor.workflows.repository import get_signal
from sous_service.caller import Caller
from sous_service.domain_errors import Conflict, InputInvalid, NotFound
from sous_service.internal_context import InternalContext

TRIGGER = "replay"


class ReplayService:
    def __init__(self, executor: ExecutorService) -> None:
        self.executor = executor

    async def _load(self, workspace_id: str, template_id: str, execution_id: str) -> Execution:
        async with self.executor.sessions() as session:
            row = await repo.get_execution_row(session, workspace_id, execution_id)
            if row is None or row.recipe_id != template_id:
                raise NotFound("execution", execution_id)
            events = await self.executor.store.load(session, AGGREGATE, execution_id)
        return Execution.from_events(events)

    async def _candidate_recipe(
        self, ctx: InternalContext, original: Execution, revision: int | None
    ) -> dict[str, Any]:
        if revision is None:
            return dict(original.recipe)
        current = await self.executor.load_recipe(ctx.workspace_id, original.template_id)
        if current is not None and int(current.get("revision") or 0) == revision:
            return dict(current)
        recipe = await self.executor.catalog.recipe_revision(ctx.workspace_id, original.template_id, revision)
        if recipe is None:
            raise InputInvalid.single("revision", f"recipe '{original.template_id}' has no revision {revision}")
        return recipe

    async def start(
        self,
        ctx: InternalContext,
        template_id: str,
        execution_id: str,
        revision: int | None,
        step_overrides: dict[str, dict[str, Any]],
    ) -> dict[str, Any]:
        original = await self._load(ctx.workspace_id, template_id, execution_id)
        if not original.finished:
            raise Conflict(f"execution '{execution_id}' is still {original.status}; replay a finished one")
        candidate = await self._candidate_recipe(ctx, original, revision)
        steps = list(candidate.get("steps") or [])
        known = {str(s.get("step_id")) for s in steps}
        for sid in step_overrides:
            if sid not in known:
                raise InputInvalid.single(f"step_overrides.{sid}", "unknown step")
        candidate["steps"] = apply_overrides(steps, step_overrides)
        completed = [s.step_id for s in original.ordered_steps() if s.status == "completed"]
        try:
            plan = plan_replay(
                list(original.recipe.get("steps") or []),
                candidate["steps"],
                candidate.get("execution_config") or {},
                completed,
            )
        except PlanError as exc:
            raise InputInvalid.single("revision" if revision is not None else "step_overrides", str(exc)) from None
        # Named, not copied: the runner reads the kept outputs from the original run.
        reused = [summary_result(original.steps[sid].result()) for sid in plan.reused]
        # Agents the past execution ran with stay as recorded; new ones (new steps, judges) are loaded.
        needed = sorted(referenced_agents(candidate["steps"]) - set(original.agents))
        loaded = await self.executor.load_agents(ctx.workspace_id, {"steps": [{"agent_id": a} for a in needed]})
        agents = {**original.agents, **loaded}
        command = StartExecution(
            workspace_id=ctx.workspace_id,
            recipe=candidate,
            agents=agents,
            input_data=original.input_data,
            triggered_by=TRIGGER,
            rerun_of=execution_id,
            reused_results=reused,
        )
        started = await self.executor.start(command, Caller.from_context(ctx))
        replay_id = started["execution_id"]
        return {
            **started,
            "replay_execution_id": replay_id,
            "replay_of": execution_id,
            "revision": revision,
            "plan": plan.as_json(),
            "report_url": f"/api/workflow-recipes/{template_id}/executions/{replay_id}/replay-report",
            "message": f"Replay of execution '{execution_id}' started: {len(plan.rerun)} of "
            f"{len(plan.rerun) + len(plan.reused)} steps run again",
        }

    async def report(self, ctx: InternalContext, template_id: str, replay_id: str) -> dict[str, Any]:
        replay = await self._load(ctx.workspace_id, template_id, replay_id)
        if replay.triggered_by != TRIGGER or not replay.rerun_of:
            raise Conflict(f"execution '{replay_id}' is not a replay")
        original = await self._load(ctx.workspace_id, template_id, replay.rerun_of)
        async with self.executor.sessions() as session:
            before = await get_signal(session, original.execution_id, "quality")
            after = await get_signal(session, replay_id, "quality")
        order = [s.step_id for s in replay.ordered_steps()]
        order += [s.step_id for s in original.ordered_steps() if s.step_id not in replay.steps]
        diff = replay_diff(
            order,
            _records(original),
            _records(replay),
            Usage(original.total_tokens, original.total_cost_usd, original.total_duration_ms),
            (_score(before), _score(after)),
        )
        changed = changed_steps(list(original.recipe.get("steps") or []), list(replay.recipe.get("steps") or []))
        return {
            "replay_execution_id": replay_id,
            "replay_of": original.execution_id,
            "recipe_id": template_id,
            "status": replay.status,
            "finished": replay.status in FINISHED,
            "error": replay.error,
            "changed_steps": [sid for sid in order if sid in changed],
            "rerun_steps": [s.step_id for s in replay.ordered_steps() if not _reused_planned(replay, s.step_id)],
            "reused_steps": [s.step_id for s in replay.ordered_steps() if _reused_planned(replay, s.step_id)],
            "quality_source": "the quality service's QualityAssessed of each execution (automatic with "
            "auto_learning, else POST /api/workflow-recipes/{id}/assess-quality); null until assessed",
            **diff,
        }


def _reused_planned(replay: Execution, step_id: str) -> bool:
    return any(str(r.get("step_id")) == step_id for r in replay.reused_results)


def _records(execution: Execution) -> dict[str, StepRecord]:
    return {
        s.step_id: StepRecord(
            step_id=s.step_id,
            status=s.status,
            output=s.output,
            tokens=int(s.tokens_used.get("total", 0)),
            cost_usd=float(s.cost_usd),
            duration_ms=float(s.duration_ms),
            reused=s.reused or _reused_planned(execution, s.step_id),
        )
        for s in execution.ordered_steps()
    }


def _score(signal: dict[str, Any] | None) -> float | None:
    value = (signal or {}).get("quality_score")
    return float(value) if isinstance(value, int | float) else None

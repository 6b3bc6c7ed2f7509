"""The work of a workflow run's stages, apart from stage 4 (execution_stage.py) and the machine (driver.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sous_events.events.workflows import WorkflowPlanRejected
from sous_executor.llm.errors import model_failure
from sous_executor.workflows import repository as repo
from sous_executor.workflows.context import recipe_template_id, subtask_context
from sous_executor.workflows.llm import Completion, complete
from sous_executor.workflows.model import StageState, WorkflowRun
from sous_executor.workflows.plan import (
    PLAN_SCHEMA_NAME,
    feedback_message,
    plan_schema,
    planner_messages,
    validate_plan,
)
from sous_executor.workflows.selection import NoAgent, select_agents
from sous_executor.workflows.stages import AGGREGATION, DECOMPOSITION, EXECUTION, QUALITY

if TYPE_CHECKING:
    from sous_executor.workflows.runner import WorkflowRunner

DEFAULT_MAX_SUBTASKS = 6
DEFAULT_PLANNER_ATTEMPTS = 3
MODEL_ERROR_RETRIES = 3
MAX_OUTPUT_IN_EVENT = 4000


class StageError(Exception):
    def __init__(self, message: str, code: str = "stage_failed", detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail or {}


def utcnow() -> datetime:
    return datetime.now(UTC)


class StageWork:
    """One run's state and what its stages do; the driver records their outcomes."""

    def __init__(self, runner: WorkflowRunner, run_id: str) -> None:
        self.runner = runner
        self.run_id = run_id
        self.run = WorkflowRun()

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.run.workflow.get("configuration") or {})

    async def _emit(self, *payloads: Any, finish: bool = False, extra: Any = None) -> None:
        self.run = await self.runner.append(self.run, payloads, finish=finish, extra=extra)

    async def _cancel_requested(self) -> bool:
        if not self.run.cancel_requested:
            async with self.runner.sessions() as session:
                row = await repo.get_run_row(session, self.run.workspace_id, self.run_id)
            if row is None or not row.doc.get("cancel_requested"):
                return False
            self.run = await self.runner.load(self.run_id)
        return True

    # ------------------------------------------------------------ helpers
    async def _agents(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        allowed = [str(a) for a in self.config.get("agent_ids") or []]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.runner.timings.agent_wait_s
        while True:
            async with self.runner.sessions() as session:
                agents, metrics = await repo.workspace_agents(session, self.run.workspace_id)
            if not allowed:
                # A workspace's first agent, created just before the run, may not have reached this replica yet.
                if any(str(a.get("status") or "active") == "active" for a in agents) or loop.time() >= deadline:
                    return agents, metrics
                await asyncio.sleep(self.runner.timings.poll_s)
                continue
            by_id = {str(a.get("id")): a for a in agents}
            missing = [i for i in allowed if i not in by_id]
            if missing:
                # An agent created just before the run may not have reached this replica yet: ask the catalog.
                steps = [{"agent_id": i} for i in missing]
                by_id.update(await self.runner.service.load_agents(self.run.workspace_id, {"steps": steps}))
            if all(i in by_id for i in allowed) or loop.time() >= deadline:
                return [by_id[i] for i in allowed if i in by_id], metrics
            await asyncio.sleep(self.runner.timings.poll_s)

    async def _planner_agent(self) -> dict[str, Any] | None:
        agent_id = self.config.get("planner_agent_id")
        if not agent_id:
            return None
        async with self.runner.sessions() as session:
            agents, _ = await repo.workspace_agents(session, self.run.workspace_id)
        found = next((a for a in agents if str(a.get("id")) == str(agent_id)), None)
        if found is None:
            raise StageError(f"planner agent '{agent_id}' is not an agent of this workspace", "planner_unavailable")
        return found

    async def _complete(self, agent: dict[str, Any] | None, messages: list[dict[str, Any]], **kw: Any) -> Completion:
        last: Exception | None = None
        for attempt in range(MODEL_ERROR_RETRIES):
            try:
                return await complete(
                    self.runner.clients, self.runner.settings, self.run.workspace_id, agent, messages, **kw
                )
            except Exception as exc:
                failure = model_failure(exc)
                if failure is None:
                    raise
                if failure.error_type == "config_error":
                    raise StageError(str(exc), "model_config") from exc
                last = exc
                await asyncio.sleep(0.5 * 2**attempt)
        raise StageError(f"the model did not answer: {last}", "model_unavailable")

    def _plan(self) -> dict[str, Any]:
        return dict(self.run.stage(DECOMPOSITION).output.get("plan") or {})

    # ------------------------------------------------------------ 1 decomposition
    async def _decomposition(self, stage: StageState) -> dict[str, Any]:
        max_subtasks = int(self.config.get("max_subtasks") or DEFAULT_MAX_SUBTASKS)
        attempts = int(self.config.get("planner_max_attempts") or DEFAULT_PLANNER_ATTEMPTS)
        agents, _ = await self._agents()
        tools = [str(t) for t in self.config.get("tools") or []] or sorted(
            {str(skill) for agent in agents for skill in agent.get("skills") or []}
        )
        planner = await self._planner_agent()
        base = planner_messages(self.run.task, tools, agents, max_subtasks)
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": PLAN_SCHEMA_NAME, "schema": plan_schema(max_subtasks)},
        }
        tokens, cost = 0, 0.0
        errors: list[str] = []
        for attempt in range(len(stage.rejections) + 1, attempts + 1):
            messages = list(base)
            for rejected in self.run.stage(DECOMPOSITION).rejections:
                messages.append({"role": "assistant", "content": rejected.get("reply") or ""})
                messages.append(feedback_message(list(rejected.get("errors") or [])))
            answer = await self._complete(planner, messages, response_format=response_format)
            tokens, cost = tokens + answer.tokens, cost + answer.cost_usd
            plan, errors = validate_plan(answer.content, max_subtasks)
            if plan is not None and not errors:
                return {"plan": plan, "attempts": attempt, "usage": {"tokens": tokens, "cost_usd": round(cost, 8)}}
            await self._emit(
                WorkflowPlanRejected(run_id=self.run_id, attempt=attempt, errors=errors, reply=answer.content[:2000])
            )
        last = self.run.stage(DECOMPOSITION).rejections
        errors = errors or (list(last[-1].get("errors") or []) if last else [])
        raise StageError(
            f"the planner returned no valid plan in {attempts} attempts; last errors: {'; '.join(errors)}",
            "invalid_plan",
            {"errors": errors, "attempts": attempts},
        )

    # ------------------------------------------------------------ 2 agent selection
    async def _selection(self, stage: StageState) -> dict[str, Any]:
        agents, metrics = await self._agents()
        tools = self.config.get("tools")
        try:
            assignments = select_agents(
                self._plan().get("subtasks") or [], agents, metrics, [str(t) for t in tools] if tools else None
            )
        except NoAgent as exc:
            raise StageError(str(exc), "no_agent") from exc
        return {"assignments": assignments}

    # ------------------------------------------------------------ 3 context engineering
    async def _context(self, stage: StageState) -> dict[str, Any]:
        recipe_id = recipe_template_id(self.run.workflow_id)
        async with self.runner.sessions() as session:
            suggestions = await repo.latest_suggestions(session, self.run.workspace_id, recipe_id)
            memories = await repo.search_memory(session, self.run.workspace_id, self.run.task, exclude_run=self.run_id)
        suggestions = suggestions[:5]
        contexts = [
            subtask_context(
                task=self.run.task,
                subtask=subtask,
                inputs=self.run.input_data,
                suggestions=suggestions,
                memories=memories,
            )
            for subtask in self._plan().get("subtasks") or []
        ]
        return {
            "contexts": contexts,
            "memories": [{"run_id": m["run_id"], "rank": m["rank"], "task": m["task"]} for m in memories],
            "suggestions": suggestions,
        }

    # ------------------------------------------------------------ 5 result aggregation
    async def _aggregation(self, stage: StageState) -> dict[str, Any]:
        subtasks = self._plan().get("subtasks") or []
        results = {s["id"]: s for s in self.run.stage(EXECUTION).output.get("subtasks") or []}
        needed = {d for s in subtasks for d in s.get("depends_on") or []}
        sinks = [s["id"] for s in subtasks if s["id"] not in needed]
        combined = "\n\n".join(f"[{sid}] {(results.get(sid) or {}).get('output') or ''}" for sid in sinks)
        return {
            "sinks": sinks,
            "combined": combined[: MAX_OUTPUT_IN_EVENT * 2],
            "completed": sum(1 for r in results.values() if r.get("status") == "completed"),
            "failed": sum(1 for r in results.values() if r.get("status") == "failed"),
            "retries": sum(max(0, int(r.get("attempt") or 1) - 1) for r in results.values()),
        }

    # ------------------------------------------------------------ 6, 7 through the quality service
    async def _signal(self, kind: str) -> dict[str, Any] | None:
        execution_id = self.run.execution_id or ""
        deadline = asyncio.get_running_loop().time() + self.runner.timings.quality_wait_s
        while True:
            async with self.runner.sessions() as session:
                found = await repo.get_signal(session, execution_id, kind)
            if found is not None or asyncio.get_running_loop().time() >= deadline:
                return found
            if await self._cancel_requested():
                raise StageError(self.run.cancel_reason or "cancelled by request", "cancelled")
            await asyncio.sleep(self.runner.timings.poll_s)

    def _unavailable(self) -> dict[str, Any]:
        wait = self.runner.timings.quality_wait_s
        return {"available": False, "reason": f"the quality service did not report within {wait:g}s"}

    async def _learning(self, stage: StageState) -> dict[str, Any]:
        found = await self._signal("learning")
        if found is None:
            return self._unavailable()
        keys = ("patterns", "suggestions", "performance_metrics")
        return {"available": True, **{k: found.get(k) for k in keys}}

    async def _quality(self, stage: StageState) -> dict[str, Any]:
        found = await self._signal("quality")
        if found is None:
            return self._unavailable()
        keys = ("quality_score", "rolling_score", "grade", "breakdown", "bottlenecks")
        return {"available": True, **{k: found.get(k) for k in keys}}

    # ------------------------------------------------------------ 8 memory storage
    async def _memory(self, stage: StageState) -> dict[str, Any]:
        plan = self._plan()
        quality = self.run.stage(QUALITY).output
        content = "\n".join(
            part
            for part in (
                f"Plan: {plan.get('summary') or ''}",
                "Subtasks: " + "; ".join(str(s.get("title")) for s in plan.get("subtasks") or []),
                f"Results: {self.run.stage(AGGREGATION).output.get('combined') or ''}",
                f"Quality grade: {quality.get('grade')}" if quality.get("available") else "",
            )
            if part
        )
        return {"memory": {"task": self.run.task, "content": content}, "searchable": True}

    # ------------------------------------------------------------ 9 response generation
    async def _response(self, stage: StageState) -> dict[str, Any]:
        planner = await self._planner_agent()
        combined = self.run.stage(AGGREGATION).output.get("combined") or ""
        messages = [
            {
                "role": "system",
                "content": "You write the final answer of a multi-agent workflow from its subtasks' results.",
            },
            {"role": "user", "content": f"Task: {self.run.task}\nResults:\n{combined}\nWrite the final answer."},
        ]
        answer = await self._complete(planner, messages)
        if not answer.content.strip():
            raise StageError("the model returned an empty final answer", "empty_output")
        return {
            "final_answer": answer.content,
            "usage": {"tokens": answer.tokens, "cost_usd": round(answer.cost_usd, 8)},
        }

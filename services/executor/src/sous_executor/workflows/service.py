"""Use cases of workflows: definitions (CRUD), runs (start, views), save a plan as a recipe, memory search."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.events.workflows import (
    WorkflowCreated,
    WorkflowDeleted,
    WorkflowRunCancelRequested,
    WorkflowRunRequested,
    WorkflowUpdated,
)
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict
from sous_executor.commands import CancelWorkflowRun
from sous_executor.domain.inputs import resolve_inputs
from sous_executor.handlers import ExecutorService
from sous_executor.use_cases.execute_answers import REPLAYED_MESSAGE, started_earlier
from sous_executor.workflows import catalog
from sous_executor.workflows import repository as repo
from sous_executor.workflows.model import WORKFLOW, WORKFLOW_RUN, WorkflowDefinition, WorkflowRun
from sous_executor.workflows.runner import WorkflowRunner
from sous_executor.workflows.schemas import SaveAsRecipe, WorkflowCreate, WorkflowUpdate
from sous_executor.workflows.stages import EXECUTION, STAGES
from sous_service.caller import Caller
from sous_service.domain_errors import Conflict, InputInvalid, NotFound
from sous_service.internal_context import InternalContext
from sous_service.unit_of_work import UnitOfWork

PRODUCER = "executor"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)\}")
ACTIVE = ("pending", "running")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _input_name(placeholder: str) -> str:
    return placeholder[len("input.") :] if placeholder.startswith("input.") else placeholder


def check_task_template(template: str, inputs: dict[str, Any]) -> None:
    unknown = [m.group(0) for m in PLACEHOLDER.finditer(template) if _input_name(m.group(1)) not in inputs]
    if unknown:
        raise InputInvalid.single("task_template", "placeholders name no declared input: " + ", ".join(unknown))


def render_task(template: str, data: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = _input_name(match.group(1))
        if name not in data:
            return ""
        found = data[name]
        return found if isinstance(found, str) else json.dumps(found, ensure_ascii=False, default=str)

    return PLACEHOLDER.sub(value, template)


# A running workflow appends often: a cancel may lose a few races with its driver before it lands.
CANCEL_ATTEMPTS = 10


def _changing_fast(_: BaseException) -> Conflict:
    return Conflict("the run is changing too fast; retry")


def _run_accepted(
    run_id: str, workflow_id: str, status: str, message: str, *, replayed: bool = False
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "workflow_id": workflow_id,
        "status": status,
        "stages": list(STAGES),
        "message": message,
        "replayed": replayed,
    }


class WorkflowService:
    def __init__(self, executor: ExecutorService, runner: WorkflowRunner) -> None:
        self.executor = executor
        self.runner = runner
        self.sessions = executor.sessions
        self.store = executor.store
        self.settings = executor.settings

    # ------------------------------------------------------------ definitions
    async def _definition(self, session: AsyncSession, ctx: InternalContext, workflow_id: str) -> WorkflowDefinition:
        events = await self.store.load(session, WORKFLOW, workflow_id)
        definition = WorkflowDefinition()
        for envelope in events:
            definition.apply(envelope)
        if not events or definition.deleted or events[0].workspace_id != ctx.workspace_id:
            raise NotFound("workflow", workflow_id)
        return definition

    async def _append(
        self, session: AsyncSession, ctx: InternalContext, workflow_id: str, payload: Any, version: int
    ) -> None:
        envelope = make_event(
            payload,
            producer=PRODUCER,
            workspace_id=ctx.workspace_id,
            aggregate_id=workflow_id,
            aggregate_version=version + 1,
            correlation_id=workflow_id,
            actor=Caller.from_context(ctx).actor,
        )
        try:
            await self.store.append(session, [envelope], expected_version=version)
        except ConcurrencyConflict as exc:
            raise Conflict("the workflow changed meanwhile; retry") from exc

    async def create(self, ctx: InternalContext, body: WorkflowCreate) -> dict[str, Any]:
        inputs = {k: v.model_dump() for k, v in body.inputs.items()}
        check_task_template(body.task_template, inputs)
        workflow_id = new_id()
        now = _now()
        doc = {
            "id": workflow_id,
            "workspace_id": ctx.workspace_id,
            "name": body.name,
            "description": body.description,
            "task_template": body.task_template,
            "inputs": inputs,
            "owner": body.owner or ctx.user_id,
            "tags": list(dict.fromkeys(body.tags)),
            "status": body.status,
            "configuration": body.configuration.model_dump(),
            "created_by": ctx.user_id,
            "created_at": now,
            "updated_at": now,
        }
        async with self.sessions() as session, session.begin():
            await self._append(session, ctx, workflow_id, WorkflowCreated(workflow=doc), 0)
            await repo.project_workflow(session, doc, 1, deleted=False)
        return {"message": f"Workflow '{body.name}' created", "workflow": {**doc, "revision": 1}}

    async def get(self, ctx: InternalContext, workflow_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            found = await repo.get_workflow(session, ctx.workspace_id, workflow_id)
        if found is None:
            raise NotFound("workflow", workflow_id)
        return found

    async def list_workflows(self, ctx: InternalContext, **filters: Any) -> dict[str, Any]:
        async with self.sessions() as session:
            items, total = await repo.list_workflows(session, ctx.workspace_id, **filters)
        return {"items": items, "total": total, "skip": filters["skip"], "limit": filters["limit"]}

    async def update(
        self, ctx: InternalContext, workflow_id: str, body: WorkflowUpdate, if_match: int | None
    ) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        for key in ("name", "task_template", "status", "configuration", "inputs", "tags", "owner"):
            if key in changes and changes[key] is None:
                raise InputInvalid.single(key, "may not be null")
        async with self.sessions() as session, session.begin():
            definition = await self._definition(session, ctx, workflow_id)
            if if_match is not None and if_match != definition.version:
                raise Conflict(f"the workflow is at revision {definition.version}", code="revision_mismatch")
            doc = dict(definition.workflow)
            changed = [k for k, v in changes.items() if doc.get(k) != v]
            doc.update(changes)
            if "tags" in changes:
                doc["tags"] = list(dict.fromkeys(doc["tags"]))
            check_task_template(str(doc["task_template"]), dict(doc.get("inputs") or {}))
            doc["updated_at"] = _now()
            await self._append(
                session, ctx, workflow_id, WorkflowUpdated(workflow=doc, changed_fields=changed), definition.version
            )
            await repo.project_workflow(session, doc, definition.version + 1, deleted=False)
        return {"message": "Workflow updated", "workflow": {**doc, "revision": definition.version + 1}}

    async def delete(self, ctx: InternalContext, workflow_id: str) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            definition = await self._definition(session, ctx, workflow_id)
            await self._append(session, ctx, workflow_id, WorkflowDeleted(workflow_id=workflow_id), definition.version)
            await repo.project_workflow(session, definition.workflow, definition.version + 1, deleted=True)
        return {"message": "Workflow deleted", "workflow_id": workflow_id}

    # ------------------------------------------------------------ runs
    async def execute(
        self, ctx: InternalContext, workflow_id: str, input_data: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            run_id = new_id()
            if idempotency_key is not None:
                ttl_s = self.settings.idempotency_key_ttl_s
                target = f"workflow:{workflow_id}"
                earlier = await started_earlier(
                    session, ctx.workspace_id, idempotency_key, target, input_data, run_id, ttl_s
                )
                if earlier is not None:
                    row = await repo.get_run_row(session, ctx.workspace_id, earlier)
                    status = row.status if row is not None else "pending"
                    message = REPLAYED_MESSAGE.format(f"Workflow run {earlier}")
                    return _run_accepted(earlier, workflow_id, status, message, replayed=True)
            definition = await self._definition(session, ctx, workflow_id)
            workflow = definition.workflow
            if workflow.get("status") == "archived":
                raise Conflict(f"workflow '{workflow_id}' is archived; activate it to run it", code="workflow_archived")
            data = resolve_inputs(workflow.get("inputs") or {}, input_data)
            task = render_task(str(workflow["task_template"]), data)
            envelope = make_event(
                WorkflowRunRequested(
                    run_id=run_id, workflow_id=workflow_id, workflow=workflow, task=task, input_data=data
                ),
                producer=PRODUCER,
                workspace_id=ctx.workspace_id,
                aggregate_id=run_id,
                aggregate_version=1,
                correlation_id=run_id,
                actor=Caller.from_context(ctx).actor,
            )
            await self.store.append(session, [envelope], expected_version=0)
            await repo.project_run(session, WorkflowRun.from_events([envelope]))
            # Claimed here, durably with the request: the run starts on commit without waiting for the broker.
            # The runners' consumer then finds the lease taken; if this process dies first, the lease expires
            # and a sweeper resumes the run.
            await repo.claim_new_lease(session, run_id, ctx.workspace_id, self.runner.owner, self.runner.ttl_s)
        self.runner.spawn(run_id)
        return _run_accepted(run_id, workflow_id, "started", f"Workflow '{workflow.get('name')}' started")

    def _with_progress(self, doc: dict[str, Any], progress: tuple[int, int, str] | None) -> dict[str, Any]:
        done = int(doc.get("completed_stages") or 0)
        fraction = done / len(STAGES)
        stage4 = (doc.get("stages") or [{}] * EXECUTION)[EXECUTION - 1]
        if progress is not None and stage4.get("status") == "running" and progress[1]:
            fraction += (progress[0] / progress[1]) / len(STAGES)
            doc["subtask_progress"] = {"finished": progress[0], "total": progress[1]}
        if doc.get("status") == "completed":
            fraction = 1.0
        doc["progress"] = round(fraction, 4)
        doc["progress_percent"] = round(100 * fraction, 1)
        return doc

    async def _views(self, session: AsyncSession, rows: list[Any]) -> list[dict[str, Any]]:
        progress = await repo.execution_progress(session, [r.execution_id for r in rows if r.execution_id])
        return [self._with_progress(dict(r.doc), progress.get(r.execution_id or "")) for r in rows]

    async def get_run(self, ctx: InternalContext, workflow_id: str, run_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            row = await repo.get_run_row(session, ctx.workspace_id, run_id)
            if row is None or row.workflow_id != workflow_id:
                raise NotFound("workflow run", run_id)
            return (await self._views(session, [row]))[0]

    async def list_runs(
        self, ctx: InternalContext, workflow_id: str, status: str | None, skip: int, limit: int
    ) -> dict[str, Any]:
        async with self.sessions() as session:
            if await repo.get_workflow(session, ctx.workspace_id, workflow_id) is None:
                raise NotFound("workflow", workflow_id)
            rows, total = await repo.list_run_rows(
                session, ctx.workspace_id, workflow_id, [status] if status else None, skip, limit
            )
            items = await self._views(session, rows)
        return {"items": items, "total": total, "skip": skip, "limit": limit, "workflow_id": workflow_id}

    async def cancel_run(self, ctx: InternalContext, workflow_id: str, run_id: str, reason: str) -> dict[str, Any]:
        command = CancelWorkflowRun(workflow_id=workflow_id, run_id=run_id, reason=reason)
        answer, run = await self.executor.uows.run(
            self.request_cancel, command, Caller.from_context(ctx), attempts=CANCEL_ATTEMPTS, conflict=_changing_fast
        )
        if run is not None:
            await self._cancel_execution(ctx, run, reason)
        return answer

    async def request_cancel(
        self, command: CancelWorkflowRun, uow: UnitOfWork
    ) -> tuple[dict[str, Any], WorkflowRun | None]:
        """The answer, and the run when this call requested its cancel (its stage 4 execution is then cancelled)."""
        run_id = command.run_id
        row = await repo.get_run_row(uow.session, uow.caller.workspace_id, run_id)
        if row is None or row.workflow_id != command.workflow_id:
            raise NotFound("workflow run", run_id)
        run = WorkflowRun.from_events(await uow.load(WORKFLOW_RUN, run_id))
        if run.finished:
            raise Conflict(f"workflow run '{run_id}' already {run.status}")
        if run.cancel_requested:
            return {"run_id": run_id, "status": "cancelling", "message": "cancellation already requested"}, None
        # The cancel joins the run's own correlation, whoever asks for it.
        joined = self.executor.uows.joined(uow.session, replace(uow.caller, correlation_id=run.correlation_id))
        payload = WorkflowRunCancelRequested(run_id=run_id, reason=command.reason or "cancelled by user")
        envelope = await joined.record(payload, aggregate_id=run_id, expected_version=run.version)
        run.apply(envelope)
        await repo.project_run(uow.session, run)
        return {"run_id": run_id, "status": "cancelling", "message": "cancellation requested"}, run

    async def _cancel_execution(self, ctx: InternalContext, run: WorkflowRun, reason: str) -> None:
        """In stage 4 the engine's own cancel stops the subtasks; the stage then ends cancelled."""
        stage = run.stage(EXECUTION)
        recipe_id = stage.detail.get("recipe_id")
        if stage.status != "running" or not run.execution_id or not recipe_id:
            return
        try:
            await self.executor.cancel(ctx, str(recipe_id), run.execution_id, reason or "workflow run cancelled")
        except Conflict:
            pass  # already finished: the stage records how it ended

    async def run_events_target(self, ctx: InternalContext, workflow_id: str, run_id: str) -> None:
        async with self.sessions() as session:
            row = await repo.get_run_row(session, ctx.workspace_id, run_id)
        if row is None or row.workflow_id != workflow_id:
            raise NotFound("workflow run", run_id)

    # ------------------------------------------------------------ save as recipe
    async def save_as_recipe(
        self, ctx: InternalContext, workflow_id: str, run_id: str, body: SaveAsRecipe
    ) -> dict[str, Any]:
        async with self.sessions() as session:
            row = await repo.get_run_row(session, ctx.workspace_id, run_id)
            if row is None or row.workflow_id != workflow_id:
                raise NotFound("workflow run", run_id)
            run = WorkflowRun.from_events(await self.store.load(session, WORKFLOW_RUN, run_id))
        generated = run.stage(EXECUTION).detail.get("recipe")
        if run.status != "completed" or not isinstance(generated, dict):
            raise Conflict(f"run '{run_id}' is {run.status}; save the plan of a completed run", code="run_not_finished")
        recipe = {
            "template_id": body.template_id,
            "name": body.name or f"{run.workflow.get('name') or 'Workflow'} plan",
            "description": body.description or str(generated.get("description") or run.task)[:4000],
            "tags": body.tags,
            "template_definition": {"workflow_id": workflow_id, "run_id": run_id, "task": run.task},
            "steps": [{k: v for k, v in step.items() if k != "output_key"} for step in generated["steps"]],
            "execution_config": generated["execution_config"],
        }
        created = await catalog.create_recipe(self.settings.catalog_url, self.settings.internal_secret, ctx, recipe)
        return {"message": f"Plan of run '{run_id}' saved as recipe '{body.template_id}'", **created}

    # ------------------------------------------------------------ memory
    async def search_memory(self, ctx: InternalContext, q: str, limit: int) -> dict[str, Any]:
        async with self.sessions() as session:
            items = await repo.search_memory(session, ctx.workspace_id, q, limit=limit)
        return {"items": items, "total": len(items), "query": q}

    # ------------------------------------------------------------ views with recipe runs
    async def active(self, ctx: InternalContext) -> dict[str, Any]:
        """The executor's view of running recipe executions, plus `workflow_runs` beside it.

        `active_workflows` keeps its recipe-execution items (clients follow them by execution id); a
        workflow run's stage 4 appears there as the execution it started.
        """
        base = await self.executor.views.active_workflows(ctx)
        async with self.sessions() as session:
            rows, total = await repo.list_run_rows(session, ctx.workspace_id, None, ACTIVE, 0, 100)
            runs = await self._views(session, rows)
        base["workflow_runs"] = [
            {
                "run_id": r["run_id"],
                "workflow_id": r["workflow_id"],
                "workflow_name": r["workflow_name"],
                "status": r["status"],
                "current_stage": r["current_stage"],
                "progress": r["progress"],
                "progress_percent": r["progress_percent"],
                "execution_id": r["execution_id"],
                "metrics": {
                    "completed_stages": r["completed_stages"],
                    "subtasks": len(r.get("subtasks") or []),
                    "subtask_progress": r.get("subtask_progress"),
                },
                "created_at": r["created_at"],
                "started_at": r["started_at"],
            }
            for r in runs
        ]
        base["total_active_workflow_runs"] = total
        return base

    async def dashboard(self, ctx: InternalContext) -> dict[str, Any]:
        base = await self.executor.views.dashboard(ctx)
        async with self.sessions() as session:
            counts = await repo.run_status_counts(session, ctx.workspace_id)
            workflows = await repo.count_workflows(session, ctx.workspace_id)
        finished = sum(counts.get(s, 0) for s in ("completed", "failed", "cancelled"))
        base["workflows"] = {
            "total_workflows": workflows,
            "total_runs": sum(counts.values()),
            "active_runs": sum(counts.get(s, 0) for s in ACTIVE),
            "completed_runs": counts.get("completed", 0),
            "failed_runs": counts.get("failed", 0),
            "success_rate": round(counts.get("completed", 0) / finished, 4) if finished else 0.0,
        }
        base["overview"]["total_workflows"] = workflows
        base["overview"]["total_workflow_runs"] = sum(counts.values())
        return base

"""HTTP routes of workflows (public paths under /api/workflows; the gateway forwards them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from sous_executor.entrypoints.idempotency import IdempotencyKey, answered
from sous_executor.workflows.schemas import (
    CancelRun,
    ExecuteWorkflow,
    SaveAsRecipe,
    WorkflowCreate,
    WorkflowUpdate,
)
from sous_executor.workflows.service import WorkflowService
from sous_executor.workflows.sse import stream_run
from sous_service.errors import InputInvalid, responses
from sous_service.scopes import EXECUTIONS_READ, EXECUTIONS_RUN, RECIPES_READ, RECIPES_WRITE
from sous_service.web import Context, require_scope

BASE = "/api/workflows"
ONE = BASE + "/{workflow_id}"
RUN = ONE + "/runs/{run_id}"
READ = [require_scope(RECIPES_READ)]
WRITE = [require_scope(RECIPES_WRITE)]
RUN_READ = [require_scope(EXECUTIONS_READ)]
RUN_WRITE = [require_scope(EXECUTIONS_RUN)]
RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
Skip = Annotated[int, Query(ge=0, le=1_000_000)]


def _revision(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().strip('"')
    if not text.isdigit():
        raise InputInvalid.single("If-Match", "a revision number is expected")
    return int(text)


def build_workflow_router(service: WorkflowService) -> APIRouter:
    router = APIRouter(tags=["workflows"])

    @router.get(
        BASE,
        dependencies=READ,
        summary="List workflows",
        description="The workspace's workflows, newest change first (`sort_by=name`: by name, case-insensitive); `q` "
        "searches name and description, `owner` is the owner, `tag` a tag, `status` draft|active|archived.",
        responses=responses(),
    )
    async def list_workflows(
        ctx: Context,
        q: Annotated[str | None, Query(max_length=200)] = None,
        owner: Annotated[str | None, Query(max_length=200)] = None,
        tag: Annotated[str | None, Query(max_length=100)] = None,
        status: Literal["draft", "active", "archived"] | None = None,
        skip: Skip = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        sort_by: Literal["updated_at", "name"] = "updated_at",
    ) -> dict[str, Any]:
        return await service.list_workflows(
            ctx, q=q, owner=owner, tag=tag, status=status, skip=skip, limit=limit, sort_by=sort_by
        )

    @router.post(
        BASE,
        dependencies=WRITE,
        status_code=201,
        summary="Create a workflow",
        description="A task template with inputs, owner, tags, status and the configuration of its runs "
        "(planner agent, agents and tools it may use, maximum subtasks, budgets).",
        responses=responses(),
    )
    async def create(ctx: Context, body: WorkflowCreate) -> dict[str, Any]:
        return await service.create(ctx, body)

    @router.get(
        BASE + "/active",
        dependencies=RUN_READ,
        summary="Active workflow runs and recipe runs",
        description="Running recipe executions (`active_workflows`) and the last 20 recipe runs, with "
        "`workflow_runs`: running workflow runs (current stage, progress, metrics), of this workspace.",
        responses=responses(),
    )
    async def active(ctx: Context) -> dict[str, Any]:
        return await service.active(ctx)

    @router.get(
        BASE + "/stats/dashboard",
        dependencies=RUN_READ,
        summary="Workflow and execution dashboard",
        description="Execution overview, today, performance, types, 30-day trends and recent activity, plus "
        "workflow run counts, of this workspace.",
        responses=responses(),
    )
    async def dashboard(ctx: Context) -> dict[str, Any]:
        return await service.dashboard(ctx)

    @router.get(
        BASE + "/memory/search",
        dependencies=RUN_READ,
        summary="Search the workspace memory",
        description="Full-text search over what finished workflow runs stored at stage 8.",
        responses=responses(),
    )
    async def search_memory(
        ctx: Context,
        q: Annotated[str, Query(min_length=1, max_length=500)],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> dict[str, Any]:
        return await service.search_memory(ctx, q, limit)

    @router.get(
        ONE,
        dependencies=READ,
        summary="Get a workflow",
        description="One workflow with its revision.",
        responses=responses(),
    )
    async def get(workflow_id: str, ctx: Context) -> dict[str, Any]:
        return await service.get(ctx, workflow_id)

    @router.put(
        ONE,
        dependencies=WRITE,
        summary="Update a workflow",
        description="Changes the given fields; `If-Match: <revision>` refuses the change (409) if the workflow "
        "moved on. Runs already started keep the definition they started with.",
        responses=responses(409),
    )
    async def update(
        workflow_id: str,
        ctx: Context,
        body: WorkflowUpdate,
        if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    ) -> dict[str, Any]:
        return await service.update(ctx, workflow_id, body, _revision(if_match))

    @router.delete(
        ONE,
        dependencies=WRITE,
        summary="Delete a workflow",
        description="Its runs stay readable by id.",
        responses=responses(409),
    )
    async def delete(workflow_id: str, ctx: Context) -> dict[str, Any]:
        return await service.delete(ctx, workflow_id)

    @router.post(
        ONE + "/execute",
        dependencies=RUN_WRITE,
        status_code=202,
        summary="Run a workflow",
        description="Checks the inputs, records WorkflowRunRequested and returns at once; the run then passes "
        "through the nine stages (decomposition, agent selection, context engineering, agent execution on the "
        "engine, result aggregation, learning update, quality assessment, memory storage, response generation). "
        "With an `Idempotency-Key`, a retried request never starts the run twice.",
        responses=responses(409),
    )
    async def execute(
        workflow_id: str,
        ctx: Context,
        response: Response,
        idempotency_key: IdempotencyKey = None,
        body: ExecuteWorkflow | None = None,
    ) -> dict[str, Any]:
        input_data = (body or ExecuteWorkflow()).input_data
        return answered(response, await service.execute(ctx, workflow_id, input_data, idempotency_key))

    @router.get(
        ONE + "/runs",
        dependencies=RUN_READ,
        summary="List a workflow's runs",
        description="Newest first, optionally filtered by status, each with its current stage and progress.",
        responses=responses(),
    )
    async def list_runs(
        workflow_id: str,
        ctx: Context,
        status: RunStatus | None = None,
        skip: Skip = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        return await service.list_runs(ctx, workflow_id, status, skip, limit)

    @router.get(
        RUN,
        dependencies=RUN_READ,
        summary="Workflow run status",
        description="Status, current stage, progress, every stage with its output or error, the plan, the "
        "subtasks with their agents and selection reasons, the engine execution and the final answer.",
        responses=responses(),
    )
    async def get_run(workflow_id: str, run_id: str, ctx: Context) -> dict[str, Any]:
        return await service.get_run(ctx, workflow_id, run_id)

    @router.get(
        RUN + "/events",
        dependencies=RUN_READ,
        summary="Live events of a workflow run",
        description="Server-Sent Events: the run's stage events and, from stage 4, its execution's step events, "
        "stored first then live, until WorkflowRunFinished. `id` is the store position; `Last-Event-ID` resumes.",
        responses={**responses(), 200: {"content": {"text/event-stream": {}}, "description": "Event stream"}},
    )
    async def events(
        workflow_id: str,
        run_id: str,
        ctx: Context,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        await service.run_events_target(ctx, workflow_id, run_id)
        after = int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else 0
        return StreamingResponse(
            stream_run(service.sessions, run_id, after, service.settings.sse_poll_s),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.post(
        RUN + "/cancel",
        dependencies=RUN_WRITE,
        status_code=202,
        summary="Cancel a workflow run",
        description="Honoured between stages and while stages wait; in stage 4 the engine cancels the subtasks' "
        "execution. The run ends `cancelled`; 409 if it already finished.",
        responses=responses(409),
    )
    async def cancel_run(workflow_id: str, run_id: str, ctx: Context, body: CancelRun | None = None) -> dict[str, Any]:
        return await service.cancel_run(ctx, workflow_id, run_id, (body or CancelRun()).reason)

    @router.post(
        RUN + "/save-as-recipe",
        dependencies=WRITE,
        status_code=201,
        summary="Save a run's plan as a recipe",
        description="Creates a recipe in the catalog from the plan a completed run executed: one step per "
        "subtask, with its agent, prompt and dependencies.",
        responses=responses(409, 502, 503),
    )
    async def save_as_recipe(workflow_id: str, run_id: str, ctx: Context, body: SaveAsRecipe) -> dict[str, Any]:
        return await service.save_as_recipe(ctx, workflow_id, run_id, body)

    return router

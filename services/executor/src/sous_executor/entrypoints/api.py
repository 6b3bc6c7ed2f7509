"""HTTP routes of the executor (public paths; the gateway forwards them with a signed context)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from sous_executor.entrypoints.idempotency import IdempotencyKey, answered
from sous_executor.entrypoints.sse import stream_execution
from sous_executor.handlers import ExecutorService
from sous_executor.tools.router import ToolRouter
from sous_service.errors import responses
from sous_service.scopes import EXECUTIONS_READ, EXECUTIONS_RUN
from sous_service.web import Context, accepts_event_stream, require_scope

RECIPES = "/api/workflow-recipes"
EXECUTION = RECIPES + "/{template_id}/executions/{execution_id}"
StatusFilter = Literal["pending", "running", "completed", "failed", "cancelled"]


class ExecuteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_data: dict[str, Any] = Field(default_factory=dict)


class StepOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt_template: str = Field(min_length=1)


class RerunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_step: str | None = None
    step_overrides: dict[str, StepOverride] = Field(default_factory=dict)


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


class ExecuteAccepted(BaseModel):
    recipe_execution_id: str
    execution_id: str
    recipe_id: str
    status: str
    total_steps: int
    message: str
    replayed: bool = Field(
        default=False, description="True when an earlier request with the same Idempotency-Key started it."
    )


def build_router(service: ExecutorService, tools: ToolRouter) -> APIRouter:
    router = APIRouter()
    reads = service.views.statements

    @router.post(
        RECIPES + "/{template_id}/execute",
        dependencies=[require_scope(EXECUTIONS_RUN)],
        status_code=202,
        response_model=ExecuteAccepted,
        summary="Execute a recipe",
        description="Validates inputs (defaults applied), enforces the workspace's concurrency limit, records "
        "ExecutionRequested and returns at once; a runner picks the execution up. With an `Idempotency-Key`, "
        "a retried request never starts (nor pays for) the execution twice. With `Accept: text/event-stream` "
        "the answer is the execution's live events instead (200, as from `.../executions/{execution_id}/events`; "
        "its id in `X-Execution-ID` and `Location`): one request starts and follows it.",
        responses={**responses(429), 200: {"content": {"text/event-stream": {}}, "description": "Event stream"}},
        tags=["executions"],
    )
    async def execute(
        template_id: str,
        ctx: Context,
        request: Request,
        response: Response,
        idempotency_key: IdempotencyKey = None,
        body: ExecuteBody | None = None,
    ) -> Any:
        input_data = (body or ExecuteBody()).input_data
        answer = await service.execute(ctx, template_id, input_data, idempotency_key=idempotency_key)
        if not accepts_event_stream(request):
            return answered(response, answer)
        execution_id = answer["recipe_execution_id"]
        headers = {
            "X-Execution-ID": execution_id,
            "Location": f"{RECIPES}/{template_id}/executions/{execution_id}",
            **({"Idempotent-Replayed": "true"} if answer.get("replayed") else {}),
        }
        return event_stream(request, execution_id, 0, headers)

    @router.get(
        RECIPES + "/{template_id}/executions",
        dependencies=[require_scope(EXECUTIONS_READ)],
        summary="List a recipe's executions",
        description="Newest first, optionally filtered by status, with the recipe's quality score.",
        responses=responses(),
        tags=["executions"],
    )
    async def list_executions(
        template_id: str,
        ctx: Context,
        status: StatusFilter | None = None,
        skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        return await service.views.list_executions(ctx, template_id, status, skip, limit)

    @router.get(
        EXECUTION,
        dependencies=[require_scope(EXECUTIONS_READ)],
        summary="Execution status",
        description="Status, per-step results (output, tool calls, tokens, cost, attempts), totals.",
        responses=responses(),
        tags=["executions"],
    )
    async def get_execution(template_id: str, execution_id: str, ctx: Context) -> dict[str, Any]:
        return await service.views.get_execution(ctx, template_id, execution_id)

    @router.post(
        EXECUTION + "/cancel",
        dependencies=[require_scope(EXECUTIONS_RUN)],
        status_code=202,
        summary="Cancel an execution",
        description="Requests cancellation; honoured between steps and inside the model/tool loop.",
        responses=responses(409),
        tags=["executions"],
    )
    async def cancel(
        template_id: str, execution_id: str, ctx: Context, body: CancelBody | None = None
    ) -> dict[str, Any]:
        return await service.cancel(ctx, template_id, execution_id, (body or CancelBody()).reason)

    @router.post(
        EXECUTION + "/rerun",
        dependencies=[require_scope(EXECUTIONS_RUN)],
        status_code=202,
        response_model=ExecuteAccepted,
        summary="Rerun an execution from a step",
        description="Starts a new execution; the steps before `from_step` reuse their recorded outputs (no model "
        "call), optionally with prompt overrides per step.",
        responses=responses(409, 429),
        tags=["executions"],
    )
    async def rerun(template_id: str, execution_id: str, ctx: Context, body: RerunBody | None = None) -> dict[str, Any]:
        body = body or RerunBody()
        overrides = {k: v.model_dump() for k, v in body.step_overrides.items()}
        return await service.rerun(ctx, template_id, execution_id, body.from_step, overrides)

    @router.get(
        EXECUTION + "/events",
        dependencies=[require_scope(EXECUTIONS_READ)],
        summary="Live events of an execution",
        description="Server-Sent Events: the stored events, then new ones as they happen, until ExecutionFinished. "
        "`id` is the event's stream version; `Last-Event-ID` resumes after it.",
        responses={**responses(), 200: {"content": {"text/event-stream": {}}, "description": "Event stream"}},
        tags=["executions"],
    )
    async def events(
        template_id: str,
        execution_id: str,
        ctx: Context,
        request: Request,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        await service.views.require_listed(ctx, template_id, execution_id)
        after = int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else 0
        return event_stream(request, execution_id, after)

    def event_stream(
        request: Request, execution_id: str, after: int, headers: dict[str, str] | None = None
    ) -> StreamingResponse:
        return StreamingResponse(
            stream_execution(reads, request.app.state.event_notifications, execution_id, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        )

    @router.get(
        "/api/tools",
        dependencies=[require_scope(EXECUTIONS_READ)],
        summary="Available tools",
        description="The tools agents of this workspace can be given as skills (built-in tools and the Composio "
        "toolkits granted to the workspace), with their JSON Schema parameters.",
        responses=responses(),
        tags=["tools"],
    )
    async def list_tools(ctx: Context) -> dict[str, Any]:
        return {"items": tools.list_tools(ctx.workspace_id)}

    return router

"""HTTP routes of the Quality section of docs/api.md, at their public paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Actor
from sous_events.store import ConcurrencyConflict
from sous_quality.adapters import views
from sous_quality.domain.errors import ExecutionNotFinished, ExecutionNotFound, RecipeNotFound
from sous_quality.handlers import AssessExecution, Cause, LearnFromExecution, QualityHandlers
from sous_service.errors import ApiError, responses
from sous_service.internal_context import InternalContext
from sous_service.logs import correlation_id_var
from sous_service.scopes import QUALITY_WRITE, RECIPES_READ
from sous_service.web import Context, require_scope

T = TypeVar("T")
PREFIX = "/api/workflow-recipes"
CONFLICT_RETRIES = 3


class AssessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    execution_id: str = Field(min_length=1, max_length=64)
    # Learnings once came from the caller and could steer reliability; they are computed here only.
    learnings: None = Field(
        default=None,
        description="Refused when set: learning patterns are computed by the server from the execution.",
    )


class LearnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    execution_id: str = Field(min_length=1, max_length=64)


class Breakdown(BaseModel):
    completeness: float
    accuracy: float
    efficiency: float
    reliability: float
    cost: float


class AssessResponse(BaseModel):
    execution_id: str
    recipe_id: str
    assessed_at: str
    quality_score: float
    rolling_score: float
    breakdown: Breakdown
    grade: str
    bottlenecks: list[dict[str, Any]]


class LearnResponse(BaseModel):
    execution_id: str
    recipe_id: str
    analyzed_at: str
    patterns: list[dict[str, Any]]
    suggestions: list[dict[str, Any]]
    performance_metrics: dict[str, Any]


class SuggestionsResponse(BaseModel):
    recipe_id: str
    quality_score: float | None
    suggestions: list[dict[str, Any]]
    patterns: list[dict[str, Any]]
    performance_metrics: dict[str, Any]
    last_analyzed_at: str | None
    analysis_count: int


class HistoryPoint(BaseModel):
    execution_id: str
    assessed_at: str
    quality_score: float
    rolling_score: float
    grade: str
    breakdown: Breakdown
    recipe_revision: int | None
    models: list[str]


class HistoryResponse(BaseModel):
    recipe_id: str
    quality_score: float | None
    assessment_count: int
    points: list[HistoryPoint]


def _cause(ctx: InternalContext) -> Cause:
    return Cause(
        actor=Actor(user_id=ctx.user_id, auth_type=ctx.auth_type),
        correlation_id=correlation_id_var.get() or ctx.request_id,
    )


def _to_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ExecutionNotFound):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, ExecutionNotFinished):
        return ApiError(409, "execution_not_finished", str(exc))
    if isinstance(exc, RecipeNotFound):
        return ApiError(404, "not_found", str(exc))
    raise exc


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["quality"])

    async def run(request: Request, work: Callable[[QualityHandlers, AsyncSession], Awaitable[T]]) -> T:
        sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
        service: QualityHandlers = request.app.state.quality
        for attempt in range(CONFLICT_RETRIES):
            try:
                async with sessions() as session, session.begin():
                    return await work(service, session)
            except ConcurrencyConflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise ApiError(
                        409, "concurrency_conflict", "the recipe's quality changed concurrently; retry"
                    ) from None
            except (ExecutionNotFound, ExecutionNotFinished, RecipeNotFound) as exc:
                raise _to_api_error(exc) from None
        raise AssertionError("unreachable")

    @router.post(
        "/{recipe_id}/assess-quality",
        dependencies=[require_scope(QUALITY_WRITE)],
        response_model=AssessResponse,
        summary="Assess the quality of a finished execution",
        description=(
            "Scores a finished execution of this recipe on completeness, accuracy, efficiency, reliability and "
            "cost; the overall score is their mean, with a grade (A>=0.9, B>=0.75, C>=0.6, D>=0.4, else F) and "
            "bottlenecks. Updates the recipe's rolling quality score (EMA, alpha 0.3) and appends QualityAssessed. "
            "Assessing the same execution again returns the stored assessment without moving the rolling score. "
            "Learning patterns are computed from the execution on the server; a `learnings` field is refused (422)."
        ),
        responses=responses(409),
    )
    async def assess_quality(recipe_id: str, body: AssessRequest, ctx: Context, request: Request) -> dict[str, Any]:
        return await run(
            request,
            lambda handlers, s: handlers.assess(
                s, AssessExecution(ctx.workspace_id, recipe_id, body.execution_id), _cause(ctx)
            ),
        )

    @router.post(
        "/{recipe_id}/learn",
        dependencies=[require_scope(QUALITY_WRITE)],
        response_model=LearnResponse,
        summary="Learn from a finished execution",
        description=(
            "Finds the execution's patterns (failure, step_failure, slow_step, empty_output, retry_needed, "
            "missing_input), turns them into suggestions and performance metrics, stores them in the recipe's "
            "learning_data (last 50 analyses, latest_* fields) and appends LearningRecorded. Learning from the "
            "same execution again returns the stored analysis."
        ),
        responses=responses(409),
    )
    async def learn(recipe_id: str, body: LearnRequest, ctx: Context, request: Request) -> dict[str, Any]:
        return await run(
            request,
            lambda handlers, s: handlers.learn(
                s, LearnFromExecution(ctx.workspace_id, recipe_id, body.execution_id), _cause(ctx)
            ),
        )

    @router.get(
        "/{recipe_id}/suggestions",
        dependencies=[require_scope(RECIPES_READ)],
        response_model=SuggestionsResponse,
        summary="The recipe's latest suggestions",
        description=(
            "The suggestions, patterns and performance metrics of the recipe's latest analysis, its rolling "
            "quality score, when it was last analysed and how many analyses it has."
        ),
        responses=responses(),
    )
    async def suggestions(recipe_id: str, ctx: Context, request: Request) -> dict[str, Any]:
        return await run(request, lambda _, s: views.suggestions(s, ctx.workspace_id, recipe_id))

    @router.get(
        "/{recipe_id}/quality/history",
        dependencies=[require_scope(RECIPES_READ)],
        response_model=HistoryResponse,
        summary="The recipe's quality over time",
        description=(
            "One point per assessment, oldest first (the latest `limit`): run score, rolling score, grade, "
            "breakdown, and the recipe revision and models the run used, to see whether a change helped."
        ),
        responses=responses(),
    )
    async def history(
        recipe_id: str,
        ctx: Context,
        request: Request,
        limit: int = Query(100, ge=1, le=1000, description="How many of the latest points"),
    ) -> dict[str, Any]:
        return await run(request, lambda _, s: views.history(s, ctx.workspace_id, recipe_id, limit))

    return router

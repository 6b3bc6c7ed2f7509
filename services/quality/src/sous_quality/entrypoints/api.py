"""HTTP routes of the Quality section of docs/api.md, at their public paths.

Each route turns a request into a command run in a unit of work, or a read of `adapters/views`; refusals
are domain exceptions, answered by the one mapping in `sous_service.errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.types import DecoratedCallable
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from sous_quality import handlers
from sous_quality.adapters import views
from sous_quality.adapters.executor_reads import ExecutionCatchUp
from sous_quality.commands import AssessExecution, LearnFromExecution
from sous_quality.domain.errors import ExecutionNotFinished, ExecutionNotFound
from sous_quality.schemas import (
    AssessRequest,
    AssessResponse,
    HistoryResponse,
    LearnRequest,
    LearnResponse,
    SuggestionsResponse,
)
from sous_service.caller import Caller
from sous_service.db import snapshot_session
from sous_service.domain_errors import Unavailable
from sous_service.errors import responses
from sous_service.scopes import QUALITY_WRITE, RECIPES_READ
from sous_service.unit_of_work import UnitOfWorks
from sous_service.web import Context, require_scope

PREFIX = "/api/workflow-recipes"
T = TypeVar("T")


@dataclass(frozen=True)
class QualityServices:
    uows: UnitOfWorks
    catch_up: ExecutionCatchUp | None = None


CATCH_UP = (
    " Right after a run ends, when the executor already says it finished, the request waits for the run's events "
    "to reach this service (up to 10 s by default), then answers 503 with Retry-After if they still have not."
)


def _services(request: Request) -> QualityServices:
    services: QualityServices = request.app.state.quality
    return services


def _uows(request: Request) -> UnitOfWorks:
    services: QualityServices = request.app.state.quality
    return services.uows


async def _read_session(uows: Annotated[UnitOfWorks, Depends(_uows)]) -> AsyncIterator[AsyncSession]:
    # The views read a row and then what belongs to it: one snapshot keeps the answer consistent.
    async with snapshot_session(uows.sessions) as session:
        yield session


Units = Annotated[UnitOfWorks, Depends(_uows)]
Services = Annotated[QualityServices, Depends(_services)]
ReadSession = Annotated[AsyncSession, Depends(_read_session)]


def _caller(ctx: Context) -> Caller:
    return Caller.from_context(ctx)


CallerOf = Annotated[Caller, Depends(_caller)]

router = APIRouter(prefix=PREFIX, tags=["quality"])


def _decision(
    path: str, response_model: type[BaseModel], summary: str, description: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A route that records a decision about a finished execution: the quality:write scope; 409 until it
    has finished."""
    return router.post(
        path,
        dependencies=[require_scope(QUALITY_WRITE)],
        response_model=response_model,
        summary=summary,
        description=description + CATCH_UP,
        responses=responses(409, 503),
    )


async def _on_finished_run(
    services: QualityServices, caller: Caller, template_id: str, execution_id: str, work: Callable[[], Awaitable[T]]
) -> T:
    """Work on a finished run; when this copy does not have it finished but the executor does, wait for the
    copy to catch up first (read-your-writes)."""
    try:
        return await work()
    except (ExecutionNotFound, ExecutionNotFinished):
        catch_up = services.catch_up
        if catch_up is None or not await catch_up.finished_at_owner(caller.workspace_id, template_id, execution_id):
            raise
        if not await catch_up.copy_finished(caller.workspace_id, template_id, execution_id):
            raise Unavailable(
                f"execution '{execution_id}' finished; its events have not arrived yet, retry",
                retry_after_s=1,
                code="copy_behind",
            ) from None
    return await work()


@_decision(
    "/{template_id}/assess-quality",
    AssessResponse,
    "Assess the quality of a finished execution",
    (
        "Scores a finished execution of this recipe on completeness, accuracy, efficiency, reliability and "
        "cost; the overall score is their mean, with a grade (A>=0.9, B>=0.75, C>=0.6, D>=0.4, else F) and "
        "bottlenecks. Updates the recipe's rolling quality score (EMA, alpha 0.3) and appends QualityAssessed. "
        "Assessing the same execution again returns the stored assessment without moving the rolling score. "
        "A run in which no step ran (every result reused, as in a replay without changes, or skipped) is "
        "scored with `counted: false` and moves neither the rolling score nor the count of assessed runs. "
        "Learning patterns are computed from the execution on the server; a `learnings` field is refused (422)."
    ),
)
async def assess_quality(template_id: str, body: AssessRequest, caller: CallerOf, services: Services) -> dict[str, Any]:
    command = AssessExecution(template_id=template_id, execution_id=body.execution_id)
    return await _on_finished_run(
        services, caller, template_id, body.execution_id, lambda: services.uows.run(handlers.assess, command, caller)
    )


@_decision(
    "/{template_id}/learn",
    LearnResponse,
    "Learn from a finished execution",
    (
        "Finds the execution's patterns (failure, step_failure, slow_step, empty_output, retry_needed, "
        "missing_input), turns them into suggestions and performance metrics, stores them in the recipe's "
        "learning_data (last 50 analyses, latest_* fields) and appends LearningRecorded. Learning from the "
        "same execution again returns the stored analysis."
    ),
)
async def learn(template_id: str, body: LearnRequest, caller: CallerOf, services: Services) -> dict[str, Any]:
    command = LearnFromExecution(template_id=template_id, execution_id=body.execution_id)
    return await _on_finished_run(
        services, caller, template_id, body.execution_id, lambda: services.uows.run(handlers.learn, command, caller)
    )


@router.get(
    "/{template_id}/suggestions",
    dependencies=[require_scope(RECIPES_READ)],
    response_model=SuggestionsResponse,
    summary="The recipe's latest suggestions",
    description=(
        "The suggestions, patterns and performance metrics of the recipe's latest analysis, its rolling "
        "quality score, when it was last analysed and how many analyses it has."
    ),
    responses=responses(),
)
async def suggestions(template_id: str, ctx: Context, session: ReadSession) -> dict[str, Any]:
    return await views.suggestions(session, ctx.workspace_id, template_id)


@router.get(
    "/{template_id}/quality/history",
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
    template_id: str,
    ctx: Context,
    session: ReadSession,
    limit: int = Query(100, ge=1, le=1000, description="How many of the latest points"),
) -> dict[str, Any]:
    return await views.history(session, ctx.workspace_id, template_id, limit)

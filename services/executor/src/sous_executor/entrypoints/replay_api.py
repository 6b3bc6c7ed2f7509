"""HTTP routes of what-if replay: start one against a past execution, read its report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from sous_executor.use_cases.replay import ReplayService
from sous_service.errors import responses
from sous_service.output_checks import OutputCheck, OutputSchema
from sous_service.scopes import EXECUTIONS_READ, EXECUTIONS_RUN
from sous_service.web import Context, require_scope

EXECUTION = "/api/workflow-recipes/{template_id}/executions/{execution_id}"


class ReplayStepOverride(BaseModel):
    """Fields replacing the step's own in the replayed version (only those given)."""

    model_config = ConfigDict(extra="forbid")

    prompt_template: str | None = Field(default=None, min_length=1, max_length=200_000)
    agent_id: str | None = Field(default=None, min_length=1, max_length=200)
    max_iterations: int | None = Field(default=None, ge=1, le=1000)
    output_schema: OutputSchema = None
    checks: list[OutputCheck] | None = Field(default=None, max_length=50)


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revision: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="The catalog revision of the recipe to replay (see the recipe's history); "
        "default: the recipe the past execution ran",
    )
    step_overrides: dict[str, ReplayStepOverride] = Field(
        default_factory=dict, description="Per step id, fields replacing the step's own (applied after `revision`)"
    )


class ReplayPlanOut(BaseModel):
    changed_steps: list[str]
    rerun_steps: list[str]
    reused_steps: list[str]
    removed_steps: list[str]


class ReplayAccepted(BaseModel):
    replay_execution_id: str
    execution_id: str
    recipe_execution_id: str
    replay_of: str
    recipe_id: str
    revision: int | None
    status: str
    total_steps: int
    plan: ReplayPlanOut
    report_url: str
    message: str


class UsageOut(BaseModel):
    tokens: int
    cost_usd: float
    duration_ms: float
    quality_score: float | None = None


class DeltaOut(BaseModel):
    tokens: int
    cost_usd: float
    duration_ms: float
    quality_score: float | None


class TotalsOut(BaseModel):
    original: UsageOut
    replay: UsageOut
    delta: DeltaOut
    replay_spent: UsageOut


class StepDiffOut(BaseModel):
    step_id: str
    rerun: bool
    original_status: str | None
    replay_status: str | None
    output_changed: bool
    diff: str
    original_output: str | None
    replay_output: str | None
    tokens_delta: int | None = None
    cost_usd_delta: float | None = None
    duration_ms_delta: float | None = None


class ReplayReport(BaseModel):
    replay_execution_id: str
    replay_of: str
    recipe_id: str
    status: str
    finished: bool
    error: str | None
    changed_steps: list[str]
    rerun_steps: list[str]
    reused_steps: list[str]
    changed_outputs: list[str]
    steps: list[StepDiffOut]
    totals: TotalsOut
    quality_source: str


def build_replay_router(replays: ReplayService) -> APIRouter:
    router = APIRouter(tags=["executions"])

    @router.post(
        EXECUTION + "/replay",
        dependencies=[require_scope(EXECUTIONS_RUN)],
        status_code=202,
        response_model=ReplayAccepted,
        summary="What-if replay of an execution",
        description="Runs a recipe revision (`revision`) and/or step overrides against this finished execution's "
        "inputs and recorded step outputs: only the changed steps, the steps without a recorded output and their "
        "descendants (plan order, depends_on, and the outputs their prompts name) run again; the others reuse "
        "the recorded outputs without calling a model. Returns at once with the plan; the diff is at "
        "`report_url`. 404: unknown execution; 409: the execution has not finished; 422: unknown step or "
        "revision, or an invalid override.",
        responses=responses(409, 429),
    )
    async def replay(
        template_id: str, execution_id: str, ctx: Context, body: ReplayBody | None = None
    ) -> dict[str, Any]:
        body = body or ReplayBody()
        overrides = {k: v.model_dump(mode="json", exclude_none=True) for k, v in body.step_overrides.items()}
        return await replays.start(ctx, template_id, execution_id, body.revision, overrides)

    @router.get(
        EXECUTION + "/replay-report",
        dependencies=[require_scope(EXECUTIONS_READ)],
        response_model=ReplayReport,
        summary="The diff of a replay",
        description="For a replay execution: per step whether it ran again, whether its output changed and a "
        "unified text diff; the run's totals before and after and their deltas (tokens, cost, duration, quality "
        "score). Reused steps count their recorded usage in the replay's totals; `replay_spent` is what the "
        "replay itself used. Quality scores come from the quality service's assessments and stay null until "
        "each execution is assessed. Computed while the replay runs too (`finished` says when it is final). "
        "409: the execution is not a replay.",
        responses=responses(409),
    )
    async def replay_report(template_id: str, execution_id: str, ctx: Context) -> dict[str, Any]:
        return await replays.report(ctx, template_id, execution_id)

    return router

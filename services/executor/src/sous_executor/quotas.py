"""Per-workspace quotas applied when an execution is requested.

Budgets (tokens, cost) are written into the execution's recipe copy, so the engine's own budget checks
enforce them even when the recipe sets none; a recipe may ask for less, never for more. Runs per day
are counted from midnight UTC. Both the runs in flight and the runs today are counted at the start's commit,
under the workspace's lock (adapters/admission.py), so they hold exactly across instances.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_executor.adapters.admission import TOO_MANY_ACTIVE, Admission, Refusal, refusal_of
from sous_executor.adapters.repositories import ACTIVE_STATUSES
from sous_executor.config import ExecutorSettings
from sous_executor.domain.planning import PlanError, build_plan, check_size, parse_steps
from sous_service.domain_errors import InputInvalid, RateLimited


@dataclass(frozen=True)
class Quota:
    max_tokens: int
    max_cost_usd: float
    runs_per_day: int


def quota_for(settings: ExecutorSettings, workspace_id: str) -> Quota:
    override = settings.workspace_quota_map.get(workspace_id, {})
    return Quota(
        max_tokens=int(override.get("max_tokens", settings.default_max_tokens)),
        max_cost_usd=float(override.get("max_cost_usd", settings.default_max_cost_usd)),
        runs_per_day=int(override.get("runs_per_day", settings.default_runs_per_day)),
    )


def with_budget(recipe: dict[str, Any], quota: Quota) -> dict[str, Any]:
    """The recipe with its budgets capped by the workspace's (0 means no workspace cap)."""
    config = dict(recipe.get("execution_config") or {})
    for key, limit in (("max_tokens", quota.max_tokens), ("max_cost_usd", quota.max_cost_usd)):
        if limit <= 0:
            continue
        asked = config.get(key)
        config[key] = limit if asked is None else min(asked, limit)
    if config == (recipe.get("execution_config") or {}):
        return recipe
    capped = copy.copy(recipe)
    capped["execution_config"] = config
    return capped


def check_graph(recipe: dict[str, Any], settings: ExecutorSettings) -> None:
    """422 on `steps` for recipes past the caps or unschedulable (stored before the caps existed, say)."""
    steps = recipe.get("steps") or []
    if not steps:
        raise InputInvalid.single("steps", "the recipe has no steps")
    try:
        specs = parse_steps(steps)
        check_size(specs, max_steps=settings.max_recipe_steps, max_edges=settings.max_dependency_edges)
        build_plan(specs, recipe.get("execution_config") or {})
    except PlanError as exc:
        raise InputInvalid.single("steps", str(exc)) from exc


def admission_for(workspace_id: str, quota: Quota, max_concurrent: int) -> Admission:
    """The limits a start of the workspace is admitted on at its commit (adapters/admission.py)."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if quota.runs_per_day <= 0:
        return Admission(workspace_id, max_concurrent, 0, None, ACTIVE_STATUSES)
    return Admission(workspace_id, max_concurrent, quota.runs_per_day, midnight, ACTIVE_STATUSES)


def refused(refusal: Refusal) -> RateLimited:
    """The 429 of a start its commit refused: the workspace runs its limit of executions, or used its runs today."""
    if refusal.kind == TOO_MANY_ACTIVE:
        others = refusal.counted - 1
        return RateLimited(
            f"this workspace already runs {others} executions (limit {refusal.limit})",
            retry_after_s=5,
            code="concurrency_limit",
            limits={"max_concurrent_executions": refusal.limit, "active_executions": others},
        )
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    started = refusal.counted - 1
    return RateLimited(
        f"this workspace started {started} executions today (limit {refusal.limit} per day)",
        retry_after_s=int((midnight + timedelta(days=1) - now).total_seconds()) + 1,
        code="quota_exceeded",
        limits={"runs_per_day": refusal.limit, "runs_today": started},
    )


def refuse_at_commit(engine: AsyncEngine) -> None:
    """Turn the engine's admission refusals (a start's failed commit) into 429s, whichever path committed it:
    a request's unit of work, a webhook, a workflow's stage."""

    def translate(context: ExceptionContext) -> None:
        refusal = refusal_of(context.original_exception)
        if refusal is not None:
            raise refused(refusal) from context.original_exception

    event.listen(engine.sync_engine, "handle_error", translate)


@contextmanager
def refused_as_rate_limit() -> Iterator[None]:
    """Within: an admission refusal raised by a statement that committed on its own (a start's single
    statement, outside any transaction the engine's `refuse_at_commit` sees) is the same 429."""
    try:
        yield
    except DBAPIError as exc:
        if (refusal := refusal_of(exc)) is None:
            raise
        raise refused(refusal) from exc

"""Use cases, one handler per command (sous_quality.commands), each run in a unit of work.

A decision is made by an aggregate (domain/) from its locked snapshot row and recorded at the snapshot's
version: the event, its outbox row and the projection commit together, and a decision from a snapshot
behind its stream is refused by the store (the unit of work runs the handler again on fresh state).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import utcnow
from sous_events.events import LearningRecorded, QualityAssessed, StepCompleted, StepFailed
from sous_events.store import EventStore
from sous_quality import projections
from sous_quality.adapters import copies, repository, views
from sous_quality.commands import (
    AssessExecution,
    CountAgentAttempts,
    LearnFromExecution,
    LearnFromFinishedRun,
    PublishAgentMetrics,
)
from sous_quality.domain.agents import AgentTotals, Attempt
from sous_quality.domain.errors import ExecutionNotFound
from sous_service.unit_of_work import UnitOfWork, UnitOfWorks

PRODUCER = "quality"


def unit_of_works(sessions: async_sessionmaker[AsyncSession], store: EventStore | None = None) -> UnitOfWorks:
    return UnitOfWorks(sessions, producer=PRODUCER, store=store, projector=projections.apply)


def _attempt(outcome: StepCompleted | StepFailed) -> Attempt | None:
    """How a step's outcome counts towards its agent; a reused result is neither a run nor spending."""
    if isinstance(outcome, StepCompleted):
        if outcome.reused:
            return None
        final, success = True, True
    else:
        final, success = not outcome.will_retry, False
    return Attempt(final, success, outcome.duration_ms, outcome.tokens.total, outcome.cost_usd)


async def count_agent_attempts(command: CountAgentAttempts, uow: UnitOfWork) -> None:
    """Steps' outcomes count towards their agent: staged together, for its next AgentMetricsUpdated."""
    attempts = [attempt for outcome in command.outcomes if (attempt := _attempt(outcome)) is not None]
    if not command.agent_id or not attempts:
        return
    await repository.stage_attempts(
        uow.session, command.agent_id, uow.caller.workspace_id, AgentTotals.of_attempts(attempts)
    )


async def publish_agent_metrics(command: PublishAgentMetrics, uow: UnitOfWork) -> bool:
    """The agent's staged attempts, taken under its lock, in one event with the totals after them. False when
    there were none (another instance took them first)."""
    metrics = await repository.lock_agent(uow.session, command.agent_id, uow.caller.workspace_id)
    added = await repository.take_staged_attempts(uow.session, command.agent_id)
    if added is None:
        return False
    event = metrics.count_totals(added)
    await uow.record(event, aggregate_id=metrics.agent_id, expected_version=metrics.version)
    return True


async def _execution(
    session: AsyncSession, workspace_id: str, template_id: str, execution_id: str
) -> tuple[RowMapping, RowMapping | None]:
    """The execution of this recipe in this workspace and the recipe's copy (None when unknown);
    ExecutionNotFound otherwise or once the recipe is deleted."""
    row = await copies.find_execution(session, workspace_id, template_id, execution_id)
    if row is None:
        raise ExecutionNotFound(execution_id)
    recipe = await copies.get_recipe(session, workspace_id, template_id)
    if recipe is not None and recipe["deleted"]:
        raise ExecutionNotFound(execution_id)
    return row, recipe


async def assess(command: AssessExecution, uow: UnitOfWork) -> dict[str, Any]:
    """Assess once: assessing the same execution again returns the stored assessment."""
    session, ws, eid = uow.session, uow.caller.workspace_id, command.execution_id
    execution, recipe = await _execution(session, ws, command.template_id, eid)
    if (stored := await views.assessment(session, ws, eid)) is not None:
        return stored
    quality = await repository.lock_recipe_quality(session, ws, command.template_id)
    if (stored := await views.assessment(session, ws, eid)) is not None:
        return stored  # assessed by a concurrent writer while we waited for the lock
    event = quality.assess(await copies.execution_record(session, execution, recipe))
    await uow.record(event, aggregate_id=quality.stream_id, expected_version=quality.version)
    assessed = await views.assessment(session, ws, eid)
    assert assessed is not None
    return assessed


async def learn(command: LearnFromExecution, uow: UnitOfWork) -> dict[str, Any]:
    """Learn once: learning from the same execution again returns the stored analysis."""
    session, ws, eid = uow.session, uow.caller.workspace_id, command.execution_id
    execution, recipe = await _execution(session, ws, command.template_id, eid)
    if (stored := await views.analysis(session, ws, eid)) is not None:
        return stored
    quality = await repository.lock_recipe_quality(session, ws, command.template_id)
    if (stored := await views.analysis(session, ws, eid)) is not None:
        return stored
    analyzed_at = utcnow()
    event = quality.learn(await copies.execution_record(session, execution, recipe), analyzed_at.isoformat())
    # The analysis row's time is the event's: the same moment as its analyzed_at.
    await uow.record(event, aggregate_id=quality.stream_id, expected_version=quality.version, occurred_at=analyzed_at)
    analysed = await views.analysis(session, ws, eid)
    assert analysed is not None
    return analysed


async def learn_from_finished_run(command: LearnFromFinishedRun, uow: UnitOfWork) -> None:
    """A finished run of a recipe with auto_learning (the default) is assessed and learned from at once.

    What `assess` then `learn` would record, decided in one pass: the run's copy, the recipe's copy and its
    steps are read once, the recipe's quality is locked once, and both events are appended together.
    """
    session, ws, eid = uow.session, uow.caller.workspace_id, command.execution_id
    execution = await copies.get_execution(session, eid)
    if execution is None:
        return
    recipe = await copies.get_recipe(session, ws, command.template_id)
    if not _auto_learning(recipe, execution["recipe"]):
        return
    if execution["workspace_id"] != ws or execution["template_id"] != command.template_id:
        raise ExecutionNotFound(eid)
    quality = await repository.lock_recipe_quality(session, ws, command.template_id)
    # Read under the lock: an assessment or analysis asked for meanwhile is not recorded twice.
    assessed, analysed = await repository.assessed_and_analysed(session, ws, eid)
    if assessed and analysed:
        return
    record = await copies.execution_record(session, execution, recipe)
    analyzed_at = utcnow()
    decided: list[QualityAssessed | LearningRecorded] = []
    state = quality
    if not assessed:
        decided.append(state.assess(record))
        state = state.applied(decided[-1], state.version + 1)
    if not analysed:
        decided.append(state.learn(record, analyzed_at.isoformat()))
    # The analysis row's time is the events': the same moment as the LearningRecorded's analyzed_at.
    await uow.record_all(
        decided, aggregate_id=quality.stream_id, expected_version=quality.version, occurred_at=analyzed_at
    )


def _auto_learning(recipe: RowMapping | None, snapshot: Any) -> bool:
    """The catalog's copy of the recipe decides; the run's snapshot when the copy is not known (yet)."""
    if recipe is not None and recipe["deleted"]:
        return False
    config = recipe["execution_config"] if recipe is not None else (snapshot or {}).get("execution_config")
    return bool((config or {}).get("auto_learning", True))

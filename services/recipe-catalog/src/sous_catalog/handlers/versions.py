"""Recipe versions: propose one (not current), and promote it to current through what-if replays.

Proposing is one command in one unit of work. Promoting is a process around the executor's replays, which
no transaction may hold open: (1) start the replays of the recipe's last K finished executions with the
version and record them (RecipePromotionStarted), (2) wait for their reports outside any transaction,
(3) decide (domain/promotion.py) and record the decision in one unit of work: RecipeVersionPromoted plus
the RecipeUpdated that makes the version current, or RecipePromotionRefused; both keep the report. A
promote request that outlasts `wait_s` answers "still replaying"; asking again picks up the same replays.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sous_catalog.adapters import versions
from sous_catalog.adapters.replay_client import ReplayClient, ReplayUnavailable
from sous_catalog.adapters.repositories import RecipeRepository, recipe_public
from sous_catalog.commands import PromoteRecipeVersion, ProposeRecipeVersion
from sous_catalog.domain import recipe as recipe_domain
from sous_catalog.domain.promotion import PromotionPolicy, PromotionReport, ReplayOutcome, decide, outcome_from_report
from sous_catalog.domain.rules import RecipeRules, recipe_rule_errors
from sous_catalog.domain.validation import validate_recipe_fields
from sous_catalog.handlers.clock import now
from sous_catalog.handlers.recipes import agent_errors, system_recipe
from sous_events import events as ev
from sous_events.contracts import PromotionReplay
from sous_events.ids import new_id
from sous_service.caller import Caller
from sous_service.commands import Command
from sous_service.domain_errors import Conflict, DependencyFailed, InputInvalid, NotFound
from sous_service.internal_context import InternalContext
from sous_service.unit_of_work import UnitOfWork, UnitOfWorks

CONTENT_EVENTS = ("RecipeCreated", "RecipeUpdated")


def not_a_version(template_id: str, revision: int) -> NotFound:
    return NotFound("version", str(revision), detail=f"recipe '{template_id}' has no proposed version {revision}")


@dataclass(frozen=True)
class VersionHandlers:
    rules: RecipeRules

    async def propose(self, command: ProposeRecipeVersion, uow: UnitOfWork) -> dict[str, Any]:
        """Record a version of the recipe that is not current: the recipe's revision moves, nothing else."""
        workspace_id, template_id = uow.caller.workspace_id, command.template_id
        row = await RecipeRepository(uow.session).get(workspace_id, template_id, lock=True)
        if row is None:
            raise NotFound("recipe", template_id)
        if row.is_system:
            raise system_recipe(template_id, "changed")
        changes = {k: v for k, v in command.changes.items() if k in recipe_domain.UPDATABLE_FIELDS}
        errors = validate_recipe_fields(changes, creating=False)
        errors.extend(recipe_rule_errors(self.rules, workspace_id, changes))
        if not errors and changes.get("steps") is not None:
            errors = await agent_errors(uow.session, workspace_id, changes["steps"])
        if errors:
            raise InputInvalid(errors)
        current = recipe_public(row)
        updated, changed = recipe_domain.apply_changes(current, changes, now=now(), new_webhook_id=new_id)
        if not changed:
            raise Conflict(f"the version changes nothing of recipe '{template_id}'", code="version_unchanged")
        revision = row.revision + 1
        snapshot = {**current, **updated, "revision": revision}
        await uow.record(
            ev.RecipeVersionProposed(recipe=snapshot, changed_fields=changed, base_revision=row.revision),
            aggregate_id=row.id,
            expected_version=row.revision,
        )
        found = await versions.get_version(uow.session, row.id, revision)
        assert found is not None
        return versions.version_view(found)


class _LoadVersion(Command):
    template_id: str
    revision: int


class _RecordStarted(Command):
    template_id: str
    revision: int
    replays: list[PromotionReplay]
    # The version's promotion stream as the replays were started against it: another promotion that
    # started meanwhile wins, and this one is refused rather than recorded twice.
    expected_version: int


class _RecordDecision(Command):
    template_id: str
    revision: int
    report: PromotionReport


@dataclass(frozen=True)
class PromotionResult:
    status: str  # promoted | refused | replaying
    version: dict[str, Any]
    recipe: dict[str, Any] | None = None
    report: PromotionReport | None = None


async def _version_row(uow: UnitOfWork, template_id: str, revision: int) -> tuple[Any, Any]:
    row = await RecipeRepository(uow.session).get(uow.caller.workspace_id, template_id, lock=True)
    if row is None:
        raise NotFound("recipe", template_id)
    version = await versions.get_version(uow.session, row.id, revision)
    if version is None:
        raise not_a_version(template_id, revision)
    return row, version


async def _load(command: _LoadVersion, uow: UnitOfWork) -> dict[str, Any]:
    _, version = await _version_row(uow, command.template_id, command.revision)
    if version["status"] == "promoted":
        raise Conflict(
            f"version {command.revision} of recipe '{command.template_id}' is already current",
            code="invalid_transition",
        )
    return versions.version_view(version)


async def _record_started(command: _RecordStarted, uow: UnitOfWork) -> None:
    row, version = await _version_row(uow, command.template_id, command.revision)
    if int(version["version"]) != command.expected_version:
        raise Conflict(
            f"a promotion of version {command.revision} of recipe '{command.template_id}' started meanwhile",
            code="promotion_in_progress",
        )
    await uow.record(
        ev.RecipePromotionStarted(
            recipe_id=row.id, template_id=command.template_id, revision=command.revision, replays=command.replays
        ),
        aggregate_id=versions.version_stream_id(row.id, command.revision),
        expected_version=int(version["version"]),
    )


async def _record_decision(command: _RecordDecision, uow: UnitOfWork) -> dict[str, Any] | None:
    """Promoted: the version's stream records it and the recipe's stream makes it current. The recipe must
    not have changed since the version was proposed (a promotion would silently undo that change)."""
    row, version = await _version_row(uow, command.template_id, command.revision)
    report = command.report
    stream = versions.version_stream_id(row.id, command.revision)
    if not report.promoted:
        await uow.record(
            ev.RecipePromotionRefused(
                recipe_id=row.id,
                template_id=command.template_id,
                revision=command.revision,
                reasons=report.reasons,
                report=report,
            ),
            aggregate_id=stream,
            expected_version=int(version["version"]),
        )
        return None
    events = await uow.load(recipe_domain.AGGREGATE, row.id)
    changed_since = [e.aggregate_version for e in events if e.event_type in CONTENT_EVENTS]
    if changed_since and max(changed_since) > int(version["base_revision"]):
        raise Conflict(
            f"recipe '{command.template_id}' changed at revision {max(changed_since)}, after version "
            f"{command.revision} was proposed from revision {version['base_revision']}: propose it again",
            code="version_stale",
        )
    await uow.record(
        ev.RecipeVersionPromoted(
            recipe_id=row.id, template_id=command.template_id, revision=command.revision, report=report
        ),
        aggregate_id=stream,
        expected_version=int(version["version"]),
    )
    current = recipe_public(row)
    owned = {k: v for k, v in dict(version["recipe"]).items() if k in recipe_domain.UPDATABLE_FIELDS}
    public = {**current, **owned, "updated_at": now().isoformat(), "revision": row.revision + 1}
    await uow.record(
        ev.RecipeUpdated(recipe=public, changed_fields=list(version["changed_fields"])),
        aggregate_id=row.id,
        expected_version=row.revision,
    )
    return public


@dataclass
class Promotions:
    """Promote proposed versions: replays through the executor, the decision through units of work."""

    uows: UnitOfWorks
    replays: ReplayClient
    policy: PromotionPolicy
    wait_s: float = 20.0
    poll_s: float = 0.5

    async def promote(self, command: PromoteRecipeVersion, context: InternalContext) -> PromotionResult:
        try:
            return await self._promote(command, context)
        except ReplayUnavailable as exc:
            raise DependencyFailed(str(exc), code="replay_unavailable") from exc

    async def _promote(self, command: PromoteRecipeVersion, context: InternalContext) -> PromotionResult:
        caller = Caller.from_context(context)
        template_id, revision = command.template_id, command.revision
        version = await self.uows.run(_load, _LoadVersion(template_id=template_id, revision=revision), caller)
        replaying = version["status"] == "replaying"
        started = [PromotionReplay.model_validate(r) for r in version["replays"] or []] if replaying else []
        if not started:
            executions = await self.replays.latest_finished(context, template_id, self.policy.executions)
            for execution_id in executions:
                replay_id = await self.replays.start_replay(context, template_id, execution_id, revision)
                started.append(PromotionReplay(execution_id=execution_id, replay_execution_id=replay_id))
            record = _RecordStarted(
                template_id=template_id,
                revision=revision,
                replays=started,
                expected_version=int(version["promotion_version"]),
            )
            await self.uows.run(_record_started, record, caller)
        outcomes = await self._outcomes(context, template_id, started)
        if any(not o.complete for o in outcomes):
            version = await self.uows.run(_load, _LoadVersion(template_id=template_id, revision=revision), caller)
            return PromotionResult("replaying", version)
        report = decide(self.policy, revision, outcomes)
        recipe = await self.uows.run(
            _record_decision,
            _RecordDecision(template_id=template_id, revision=revision, report=report),
            caller,
        )
        async with self.uows.sessions() as session:
            row = await RecipeRepository(session).get(context.workspace_id, template_id)
            found = await versions.get_version(session, row.id, revision) if row is not None else None
        if found is None:
            raise not_a_version(template_id, revision)
        return PromotionResult(
            "promoted" if report.promoted else "refused", versions.version_view(found), recipe, report
        )

    async def _outcomes(
        self, context: InternalContext, template_id: str, started: list[PromotionReplay]
    ) -> list[ReplayOutcome]:
        """Each replay's outcome once finished and scored, or as far as it got when `wait_s` ran out."""
        deadline = time.monotonic() + self.wait_s
        pending = {r.replay_execution_id: r.execution_id for r in started}
        done: dict[str, ReplayOutcome] = {}
        while True:
            for replay_id, execution_id in list(pending.items()):
                outcome = outcome_from_report(execution_id, await self.replays.report(context, template_id, replay_id))
                if outcome.finished and not outcome.complete:
                    outcome = await self._scored(context, template_id, outcome)
                done[replay_id] = outcome
                if outcome.complete:
                    del pending[replay_id]
            if not pending or time.monotonic() >= deadline:
                return [done[r.replay_execution_id] for r in started]
            await asyncio.sleep(self.poll_s)

    async def _scored(self, context: InternalContext, template_id: str, outcome: ReplayOutcome) -> ReplayOutcome:
        """A finished replay the quality service has not scored yet (auto-learning off): ask it to."""
        original = outcome.original_quality
        if original is None:
            original = await self.replays.quality_score(context, template_id, outcome.execution_id)
        replay = outcome.replay_quality
        if replay is None:
            replay = await self.replays.quality_score(context, template_id, outcome.replay_execution_id)
        return outcome.model_copy(update={"original_quality": original, "replay_quality": replay})

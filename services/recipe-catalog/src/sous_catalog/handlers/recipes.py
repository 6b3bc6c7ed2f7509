"""Recipe use cases: create, update, delete, record a use.

Update and delete decide from the recipe's read-model row, locked FOR UPDATE: the row is written in the
same transaction as every Recipe event (the projection runs inside the unit of work), so it is the state
after the stream's last event and its revision is the stream's version (docs/architecture.md, "Write
models"). The append still names that version, so a writer that slipped past the lock is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.adapters import agent_numbers
from sous_catalog.adapters.repositories import AgentRepository, RecipeRepository, recipe_public
from sous_catalog.commands import CreateRecipe, DeleteRecipe, RecordRecipeUse, UpdateRecipe
from sous_catalog.domain import recipe as recipe_domain
from sous_catalog.domain.rules import RecipeRules, recipe_rule_errors
from sous_catalog.domain.validation import agent_reference_errors, step_agent_ids, validate_recipe_fields
from sous_catalog.handlers.clock import now
from sous_events import events as ev
from sous_events.ids import new_id
from sous_service.domain_errors import Conflict, FieldError, Forbidden, InputInvalid, NotFound
from sous_service.unit_of_work import UnitOfWork


def duplicate_template_id(template_id: str) -> Conflict:
    return Conflict(f"recipe '{template_id}' already exists in this workspace", code="duplicate_template_id")


def system_recipe(template_id: str, verb: str) -> Forbidden:
    return Forbidden(f"system recipe '{template_id}' cannot be {verb}", code="system_recipe")


async def agent_errors(session: AsyncSession, workspace_id: str, steps: Sequence[Any]) -> list[FieldError]:
    """Steps naming agents this workspace lacks (the agents stay FOR SHARE until the recipe is written).
    Agent numbers in the steps are replaced by the agents' ids first, in place."""
    await agent_numbers.resolve_steps(session, workspace_id, steps)
    known = await AgentRepository(session).by_ids(workspace_id, step_agent_ids(steps), share_lock=True)
    return agent_reference_errors(steps, known.keys())


@dataclass(frozen=True)
class RecipeHandlers:
    rules: RecipeRules

    async def create(self, command: CreateRecipe, uow: UnitOfWork) -> dict[str, Any]:
        data, caller = command.recipe, uow.caller
        errors = validate_recipe_fields(data, creating=True)
        errors.extend(recipe_rule_errors(self.rules, caller.workspace_id, data))
        if data.get("is_system") and not caller.privileged:
            raise Forbidden("only the platform may create system recipes", code="system_recipe")
        if not errors:
            errors = await agent_errors(uow.session, caller.workspace_id, data["steps"])
        if errors:
            raise InputInvalid(errors)
        if await RecipeRepository(uow.session).get(caller.workspace_id, data["template_id"]) is not None:
            raise duplicate_template_id(data["template_id"])
        recipe_id = new_id()
        snapshot = recipe_domain.new_snapshot(
            recipe_id=recipe_id,
            workspace_id=caller.workspace_id,
            data=data,
            created_by=caller.user_id,
            now=now(),
            new_webhook_id=new_id,
            cloned_from=command.cloned_from,
        )
        public = {**snapshot, **recipe_domain.STAT_DEFAULTS}
        try:
            # The read model's unique (workspace, template_id) catches a concurrent create of the same id.
            async with uow.session.begin_nested():
                await uow.record(ev.RecipeCreated(recipe=public), aggregate_id=recipe_id, expected_version=0)
        except IntegrityError as exc:
            raise duplicate_template_id(data["template_id"]) from exc
        return public

    async def update(self, command: UpdateRecipe, uow: UnitOfWork) -> dict[str, Any]:
        workspace_id, template_id = uow.caller.workspace_id, command.template_id
        row = await RecipeRepository(uow.session).get(workspace_id, template_id, lock=True)
        if row is None:
            raise NotFound("recipe", template_id)
        if row.is_system:
            raise system_recipe(template_id, "changed")
        if command.if_match is not None and command.if_match != row.revision:
            raise Conflict(
                f"recipe '{template_id}' is at revision {row.revision}, not {command.if_match}",
                code="revision_conflict",
                current_revision=row.revision,
            )
        changes = {k: v for k, v in command.changes.items() if k in recipe_domain.UPDATABLE_FIELDS}
        errors = validate_recipe_fields(changes, creating=False)
        errors.extend(recipe_rule_errors(self.rules, workspace_id, changes))
        if not errors and changes.get("steps") is not None:
            errors = await agent_errors(uow.session, workspace_id, changes["steps"])
        if errors:
            raise InputInvalid(errors)
        current = recipe_public(row)
        try:
            updated, changed = recipe_domain.apply_changes(current, changes, now=now(), new_webhook_id=new_id)
        except recipe_domain.RecipeLocked as exc:
            raise system_recipe(template_id, "changed") from exc
        if not changed:
            return current
        public = {**current, **updated}
        await uow.record(
            ev.RecipeUpdated(recipe=public, changed_fields=changed), aggregate_id=row.id, expected_version=row.revision
        )
        return public

    async def delete(self, command: DeleteRecipe, uow: UnitOfWork) -> str:
        template_id = command.template_id
        row = await RecipeRepository(uow.session).get(uow.caller.workspace_id, template_id, lock=True)
        if row is None:
            raise NotFound("recipe", template_id)
        try:
            recipe_domain.ensure_deletable(row.doc)
        except recipe_domain.RecipeLocked as exc:
            raise system_recipe(template_id, "deleted") from exc
        await uow.record(
            ev.RecipeDeleted(recipe_id=row.id, template_id=template_id),
            aggregate_id=row.id,
            expected_version=row.revision,
        )
        return str(row.id)

    async def record_use(self, command: RecordRecipeUse, uow: UnitOfWork) -> dict[str, Any]:
        """A statistic, not a revision: the read model counts it, no event is recorded."""
        repository = RecipeRepository(uow.session)
        row = await repository.record_use(uow.caller.workspace_id, command.template_id, now())
        if row is None:
            raise NotFound("recipe", command.template_id)
        return recipe_public(row)

"""Installing a marketplace listing: the clone, and the agents the target workspace lacks, created as the
installer. Runs on RecipeInstalled, inside the consumer's transaction (`UnitOfWorks.joined`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text

from sous_catalog.adapters.repositories import AgentRepository, RecipeRepository
from sous_catalog.commands import CreateRecipe, InstallRecipe, RegisterAgent
from sous_catalog.domain import recipe as recipe_domain
from sous_catalog.handlers.agents import AgentHandlers
from sous_catalog.handlers.recipes import RecipeHandlers
from sous_catalog.schemas import AgentCreate, RecipeCreate
from sous_service.domain_errors import FieldError, InputInvalid
from sous_service.unit_of_work import UnitOfWork

logger = logging.getLogger("sous.catalog")

AGENT_INPUT_FIELDS = frozenset(f.alias or name for name, f in AgentCreate.model_fields.items())


def errors_of(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors():
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.get("loc", ()))
        field = (prefix + path).lstrip(".") or prefix or "body"
        out.append(FieldError(field=field, message=str(err.get("msg", "")), type=str(err.get("type", ""))))
    return out


@dataclass(frozen=True)
class InstallHandler:
    recipes: RecipeHandlers
    agents: AgentHandlers

    async def __call__(self, command: InstallRecipe, uow: UnitOfWork) -> dict[str, Any] | None:
        """The clone's public snapshot; None when the workspace already has a recipe of that template id."""
        installed, workspace_id, session = command.installed, uow.caller.workspace_id, uow.session
        # Installs into one workspace run one at a time, so two installs handled on different partitions
        # cannot both miss an agent (or a name) that the other is creating.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"install:{workspace_id}"}
        )
        source = installed.recipe
        template_id = source.template_id
        recipes = RecipeRepository(session)
        existing = await recipes.get(workspace_id, template_id)
        if existing is not None:
            origin = (existing.doc.get("cloned_from") or {}).get("listing_id")
            if origin != installed.listing_id:
                logger.warning(
                    "install %s: template_id %s is taken in %s", installed.install_id, template_id, workspace_id
                )
            return None
        names = [a.name for a in installed.agents if a.name]
        by_name = await AgentRepository(session).by_names(workspace_id, names)
        mapping: dict[str, str] = {}
        for snapshot in installed.agents:
            if snapshot.name in by_name:
                mapping[snapshot.id] = by_name[snapshot.name]
                continue
            # A listing's agent also carries what described it in its source workspace (id, keys to bind...):
            # only the fields a new agent is made of are taken from it.
            fields_in = {k: v for k, v in snapshot.as_dict().items() if k in AGENT_INPUT_FIELDS}
            try:
                agent_in = AgentCreate.model_validate(fields_in)
            except ValidationError as exc:
                raise InputInvalid(errors_of(exc, "agents")) from exc
            created = await self.agents.register(
                RegisterAgent(agent=agent_in.model_dump(mode="json", by_alias=True)), uow
            )
            mapping[snapshot.id] = by_name[snapshot.name] = str(created["id"])
        steps = [{**step.as_dict(), "agent_id": mapping.get(step.agent_id, step.agent_id)} for step in source.steps]
        given = source.as_dict()
        fields = {k: given[k] for k in (*recipe_domain.UPDATABLE_FIELDS, "template_id") if given.get(k) is not None}
        fields.update(
            steps=steps,
            name=recipe_domain.copy_name(source.name or template_id, await recipes.names(workspace_id)),
            is_featured=False,
        )
        try:
            recipe_in = RecipeCreate.model_validate(fields)
        except ValidationError as exc:
            raise InputInvalid(errors_of(exc, "recipe")) from exc
        data = recipe_in.model_dump(mode="json", exclude_unset=True)
        data["is_system"] = False
        cloned_from = {
            "listing_id": installed.listing_id,
            "template_id": recipe_domain.original_template_id(template_id),
        }
        return await self.recipes.create(CreateRecipe(recipe=data, cloned_from=cloned_from), uow)

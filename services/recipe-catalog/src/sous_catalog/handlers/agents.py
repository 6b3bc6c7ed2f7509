"""Agent use cases: register, update, remove. Each decides from the agent's read-model row, locked
FOR UPDATE: it is written in the same transaction as every Agent event, so it is the state after the
stream's last event (docs/architecture.md, "Write models")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sous_catalog.adapters import agent_numbers
from sous_catalog.adapters.repositories import AgentRepository, RecipeRepository
from sous_catalog.commands import RegisterAgent, RemoveAgent, UpdateAgent
from sous_catalog.domain import agent as agent_domain
from sous_catalog.domain.rules import RecipeRules, agent_rule_errors
from sous_catalog.domain.validation import storable_json_errors
from sous_catalog.handlers.clock import now
from sous_events import events as ev
from sous_events.ids import new_id
from sous_service.domain_errors import Conflict, InputInvalid, NotFound
from sous_service.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class AgentHandlers:
    rules: RecipeRules

    async def register(self, command: RegisterAgent, uow: UnitOfWork) -> dict[str, Any]:
        data, caller = command.agent, uow.caller
        errors = storable_json_errors(data, "") + agent_rule_errors(self.rules, caller.workspace_id, data)
        if errors:
            raise InputInvalid(errors)
        agent_id = new_id()
        snapshot = agent_domain.new_snapshot(
            agent_id=agent_id,
            number=await agent_numbers.next_number(uow.session, caller.workspace_id),
            workspace_id=caller.workspace_id,
            data=data,
            created_by=caller.user_id,
            now=now(),
        )
        public = {**snapshot, "metrics": {}}
        await uow.record(ev.AgentRegistered(agent=public), aggregate_id=agent_id, expected_version=0)
        return public

    async def update(self, command: UpdateAgent, uow: UnitOfWork) -> dict[str, Any]:
        workspace_id, changes = uow.caller.workspace_id, command.changes
        agent_id = await agent_numbers.resolve(uow.session, workspace_id, command.agent_id)
        row = await AgentRepository(uow.session).get(workspace_id, agent_id, lock=True)
        if row is None:
            raise NotFound("agent", agent_id)
        errors = storable_json_errors(changes, "") + agent_rule_errors(self.rules, workspace_id, changes)
        if errors:
            raise InputInvalid(errors)
        current = {**row.doc, "metrics": row.metrics or {}}
        updated, changed = agent_domain.apply_changes(current, changes, now=now())
        if not changed:
            return current
        public = {**updated, "metrics": row.metrics or {}}
        await uow.record(
            ev.AgentUpdated(agent=public, changed_fields=changed),
            aggregate_id=agent_id,
            expected_version=row.revision,
        )
        return public

    async def remove(self, command: RemoveAgent, uow: UnitOfWork) -> str:
        """Returns the removed agent's id (the command may name it by its number)."""
        workspace_id = uow.caller.workspace_id
        agent_id = await agent_numbers.resolve(uow.session, workspace_id, command.agent_id)
        row = await AgentRepository(uow.session).get(workspace_id, agent_id, lock=True)
        if row is None:
            raise NotFound("agent", agent_id)
        used_by = await RecipeRepository(uow.session).referencing_agent(workspace_id, agent_id)
        if used_by:
            raise Conflict(
                f"agent '{agent_id}' is used by recipes: {', '.join(used_by)}", code="agent_in_use", recipes=used_by
            )
        await uow.record(ev.AgentRemoved(agent_id=agent_id), aggregate_id=agent_id, expected_version=row.revision)
        return agent_id

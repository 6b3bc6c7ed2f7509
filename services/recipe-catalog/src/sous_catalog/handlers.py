"""Use cases: a command in, events appended and read models projected in the caller's one transaction.

Every function takes a session that is already inside a transaction (the API's request transaction or the
consumer's inbox transaction), so the events, the outbox rows, the projection and the inbox row commit
together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog import projections
from sous_catalog.adapters import agent_numbers
from sous_catalog.adapters.repositories import AgentRepository, ExecutionRepository, RecipeRepository, recipe_public
from sous_catalog.domain import agent as agent_domain
from sous_catalog.domain import recipe as recipe_domain
from sous_catalog.domain.rules import RecipeRules, agent_rule_errors, recipe_rule_errors
from sous_catalog.domain.validation import (
    agent_reference_errors,
    step_agent_ids,
    storable_json_errors,
    validate_recipe_fields,
)
from sous_catalog.schemas import AgentCreate, RecipeCreate
from sous_events import events as ev
from sous_events.envelope import Actor, Envelope, EventPayload
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, EventStore
from sous_service.errors import ApiError, FieldError, InputInvalid, not_found

logger = logging.getLogger("sous.catalog")

PRODUCER = "catalog"
PRIVILEGED_AUTH = ("internal", "system")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Caller:
    workspace_id: str
    user_id: str
    auth_type: str = "jwt"
    correlation_id: str = ""
    causation_id: str = ""

    @property
    def actor(self) -> Actor:
        auth = self.auth_type if self.auth_type in ("jwt", "api_key", "internal", "system") else "jwt"
        return Actor(user_id=self.user_id, auth_type=auth)

    @property
    def privileged(self) -> bool:
        return self.auth_type in PRIVILEGED_AUTH


def conflict(code: str, detail: str, **extra: Any) -> ApiError:
    return ApiError(409, code, detail, **extra)


def errors_of(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors():
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.get("loc", ()))
        field = (prefix + path).lstrip(".") or prefix or "body"
        out.append(FieldError(field=field, message=str(err.get("msg", "")), type=str(err.get("type", ""))))
    return out


class CatalogHandlers:
    def __init__(self, store: EventStore | None = None, rules: RecipeRules | None = None) -> None:
        self.store = store or EventStore()
        self.rules = rules or RecipeRules()

    async def _append(
        self, session: AsyncSession, caller: Caller, payload: EventPayload, aggregate_id: str, expected_version: int
    ) -> Envelope:
        envelope = make_event(
            payload,
            producer=PRODUCER,
            workspace_id=caller.workspace_id,
            aggregate_id=aggregate_id,
            aggregate_version=expected_version + 1,
            actor=caller.actor,
            correlation_id=caller.correlation_id,
            causation_id=caller.causation_id,
        )
        try:
            await self.store.append(session, [envelope], expected_version=expected_version)
        except ConcurrencyConflict as exc:
            raise conflict(
                "revision_conflict", f"{envelope.aggregate_type} was changed concurrently; reload and retry"
            ) from exc
        await projections.apply(session, envelope)
        return envelope

    async def _check_agents(self, session: AsyncSession, caller: Caller, steps: Any) -> list[FieldError]:
        await agent_numbers.resolve_steps(session, caller.workspace_id, steps)  # agent numbers -> ids, in place
        ids = step_agent_ids(steps)
        known = await AgentRepository(session).by_ids(caller.workspace_id, ids, share_lock=True)
        return agent_reference_errors(steps, known.keys())

    # ------------------------------------------------------------ recipes

    async def create_recipe(
        self,
        session: AsyncSession,
        caller: Caller,
        data: dict[str, Any],
        *,
        cloned_from: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        errors = validate_recipe_fields(data, creating=True)
        errors.extend(recipe_rule_errors(self.rules, caller.workspace_id, data))
        if data.get("is_system") and not caller.privileged:
            raise ApiError(403, "system_recipe", "only the platform may create system recipes")
        if not errors:
            errors = await self._check_agents(session, caller, data["steps"])
        if errors:
            raise InputInvalid(errors)
        repo = RecipeRepository(session)
        if await repo.get(caller.workspace_id, data["template_id"]) is not None:
            raise conflict("duplicate_template_id", f"recipe '{data['template_id']}' already exists in this workspace")
        recipe_id = new_id()
        snapshot = recipe_domain.new_snapshot(
            recipe_id=recipe_id,
            workspace_id=caller.workspace_id,
            data=data,
            created_by=caller.user_id,
            now=now(),
            new_webhook_id=new_id,
            cloned_from=cloned_from,
        )
        public = {**snapshot, **recipe_domain.STAT_DEFAULTS}
        try:
            async with session.begin_nested():
                await self._append(session, caller, ev.RecipeCreated(recipe=public), recipe_id, 0)
        except IntegrityError as exc:
            raise conflict(
                "duplicate_template_id", f"recipe '{data['template_id']}' already exists in this workspace"
            ) from exc
        return public

    async def update_recipe(
        self,
        session: AsyncSession,
        caller: Caller,
        template_id: str,
        changes: dict[str, Any],
        *,
        if_match: int | None = None,
    ) -> dict[str, Any]:
        repo = RecipeRepository(session)
        row = await repo.get(caller.workspace_id, template_id, lock=True)
        if row is None:
            raise not_found("recipe", template_id)
        if row.is_system:
            raise ApiError(403, "system_recipe", f"system recipe '{template_id}' cannot be changed")
        if if_match is not None and if_match != row.revision:
            raise conflict(
                "revision_conflict",
                f"recipe '{template_id}' is at revision {row.revision}, not {if_match}",
                current_revision=row.revision,
            )
        changes = {k: v for k, v in changes.items() if k in recipe_domain.UPDATABLE_FIELDS}
        errors = validate_recipe_fields(changes, creating=False)
        errors.extend(recipe_rule_errors(self.rules, caller.workspace_id, changes))
        if not errors and changes.get("steps") is not None:
            errors = await self._check_agents(session, caller, changes["steps"])
        if errors:
            raise InputInvalid(errors)
        current = recipe_public(row)
        try:
            updated, changed = recipe_domain.apply_changes(current, changes, now=now(), new_webhook_id=new_id)
        except recipe_domain.RecipeLocked as exc:
            raise ApiError(403, "system_recipe", f"system recipe '{template_id}' cannot be changed") from exc
        if not changed:
            return current
        public = {**current, **updated}
        await self._append(
            session, caller, ev.RecipeUpdated(recipe=public, changed_fields=changed), row.id, row.revision
        )
        return public

    async def delete_recipe(self, session: AsyncSession, caller: Caller, template_id: str) -> str:
        row = await RecipeRepository(session).get(caller.workspace_id, template_id, lock=True)
        if row is None:
            raise not_found("recipe", template_id)
        try:
            recipe_domain.ensure_deletable(row.doc)
        except recipe_domain.RecipeLocked as exc:
            raise ApiError(403, "system_recipe", f"system recipe '{template_id}' cannot be deleted") from exc
        await self._append(
            session, caller, ev.RecipeDeleted(recipe_id=row.id, template_id=template_id), row.id, row.revision
        )
        return str(row.id)

    async def use_recipe(self, session: AsyncSession, caller: Caller, template_id: str) -> dict[str, Any]:
        row = await RecipeRepository(session).record_use(caller.workspace_id, template_id, now())
        if row is None:
            raise not_found("recipe", template_id)
        return recipe_public(row)

    async def history(
        self, session: AsyncSession, caller: Caller, template_id: str, revision: int | None = None
    ) -> dict[str, Any]:
        row = await RecipeRepository(session).get(caller.workspace_id, template_id)
        if row is None:
            raise not_found("recipe", template_id)
        events = await self.store.load(session, recipe_domain.AGGREGATE, row.id)
        entries = []
        as_of: dict[str, Any] | None = None
        for event in events:
            if event.event_type == "RecipeCreated":
                changed = [f for f in recipe_domain.OWNED_FIELDS if f not in ("revision",)]
            else:
                changed = list(event.payload.get("changed_fields") or [])
            entries.append(
                {
                    "revision": event.aggregate_version,
                    "event_type": event.event_type,
                    "event_id": event.event_id,
                    "changed_fields": changed,
                    "actor": event.actor.model_dump(),
                    "occurred_at": event.occurred_at.isoformat(),
                }
            )
            if revision is not None and event.aggregate_version == revision:
                as_of = event.payload.get("recipe")
        if revision is not None and as_of is None:
            raise ApiError(404, "not_found", f"recipe '{template_id}' has no revision {revision}")
        return {"template_id": template_id, "recipe_id": row.id, "revisions": entries, "recipe": as_of}

    # ------------------------------------------------------------ agents

    async def register_agent(self, session: AsyncSession, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        errors = storable_json_errors(data, "") + agent_rule_errors(self.rules, caller.workspace_id, data)
        if errors:
            raise InputInvalid(errors)
        agent_id = new_id()
        number = await agent_numbers.next_number(session, caller.workspace_id)
        snapshot = agent_domain.new_snapshot(
            agent_id=agent_id,
            number=number,
            workspace_id=caller.workspace_id,
            data=data,
            created_by=caller.user_id,
            now=now(),
        )
        public = {**snapshot, "metrics": {}}
        await self._append(session, caller, ev.AgentRegistered(agent=public), agent_id, 0)
        return public

    async def update_agent(
        self, session: AsyncSession, caller: Caller, agent_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        row = await AgentRepository(session).get(caller.workspace_id, agent_id, lock=True)
        if row is None:
            raise not_found("agent", agent_id)
        errors = storable_json_errors(changes, "") + agent_rule_errors(self.rules, caller.workspace_id, changes)
        if errors:
            raise InputInvalid(errors)
        current = {**row.doc, "metrics": row.metrics or {}}
        updated, changed = agent_domain.apply_changes(current, changes, now=now())
        if not changed:
            return current
        public = {**updated, "metrics": row.metrics or {}}
        await self._append(
            session, caller, ev.AgentUpdated(agent=public, changed_fields=changed), agent_id, row.revision
        )
        return public

    async def remove_agent(self, session: AsyncSession, caller: Caller, agent_id: str) -> None:
        row = await AgentRepository(session).get(caller.workspace_id, agent_id, lock=True)
        if row is None:
            raise not_found("agent", agent_id)
        used_by = await RecipeRepository(session).referencing_agent(caller.workspace_id, agent_id)
        if used_by:
            raise conflict(
                "agent_in_use",
                f"agent '{agent_id}' is used by recipes: {', '.join(used_by)}",
                recipes=used_by,
            )
        await self._append(session, caller, ev.AgentRemoved(agent_id=agent_id), agent_id, row.revision)

    # ------------------------------------------------------------ consumed events

    async def on_execution_event(self, session: AsyncSession, envelope: Envelope) -> None:
        """ExecutionRequested counts a use; ExecutionFinished updates success_rate (pending/running: status)."""
        payload = envelope.payload
        execution_id = str(payload.get("execution_id") or envelope.aggregate_id)
        template_id = str(payload.get("recipe_id") or "")
        status = {"ExecutionRequested": "pending", "ExecutionStarted": "running"}.get(
            envelope.event_type, str(payload.get("status") or "")
        )
        if not template_id or not status:
            return
        previous, changed = await ExecutionRepository(session).transition(
            envelope.workspace_id, execution_id, template_id, status, envelope.occurred_at
        )
        recipes = RecipeRepository(session)
        if envelope.event_type == "ExecutionRequested" and changed and previous is None:
            await recipes.record_use(envelope.workspace_id, template_id, envelope.occurred_at)
        elif envelope.event_type == "ExecutionFinished" and changed:
            await recipes.record_finish(envelope.workspace_id, template_id, status)

    async def on_quality_assessed(self, session: AsyncSession, envelope: Envelope) -> None:
        payload = ev.QualityAssessed.model_validate(envelope.payload)
        await RecipeRepository(session).set_quality(envelope.workspace_id, payload.recipe_id, payload.rolling_score)

    async def on_learning_recorded(self, session: AsyncSession, envelope: Envelope) -> None:
        payload = ev.LearningRecorded.model_validate(envelope.payload)
        await RecipeRepository(session).set_learning(envelope.workspace_id, payload.recipe_id, payload.learning_data)

    async def on_agent_metrics(self, session: AsyncSession, envelope: Envelope) -> None:
        payload = ev.AgentMetricsUpdated.model_validate(envelope.payload)
        await AgentRepository(session).set_metrics(envelope.workspace_id, payload.agent_id, payload.metrics)

    async def on_recipe_installed(self, session: AsyncSession, envelope: Envelope) -> dict[str, Any] | None:
        """Create the clone (and the agents the workspace lacks) in the target workspace, as the installer."""
        payload = ev.RecipeInstalled.model_validate(envelope.payload)
        workspace_id = envelope.workspace_id
        caller = Caller(
            workspace_id=workspace_id,
            user_id=payload.installed_by or envelope.actor.user_id,
            auth_type=envelope.actor.auth_type,
            correlation_id=envelope.correlation_id or envelope.event_id,
            causation_id=envelope.event_id,
        )
        # Installs into one workspace run one at a time, so two installs handled on different partitions
        # cannot both miss an agent (or a name) that the other is creating.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"install:{workspace_id}"}
        )
        source = dict(payload.recipe)
        template_id = str(source.get("template_id") or "")
        recipes = RecipeRepository(session)
        existing = await recipes.get(workspace_id, template_id)
        if existing is not None:
            origin = (existing.doc.get("cloned_from") or {}).get("listing_id")
            if origin != payload.listing_id:
                logger.warning(
                    "install %s: template_id %s is taken in %s", payload.install_id, template_id, workspace_id
                )
            return None
        agents = AgentRepository(session)
        names = [str(a.get("name")) for a in payload.agents if a.get("name")]
        by_name = await agents.by_names(workspace_id, names)
        mapping: dict[str, str] = {}
        for snapshot in payload.agents:
            old_id = str(snapshot.get("id") or "")
            name = str(snapshot.get("name") or "")
            if name in by_name:
                mapping[old_id] = by_name[name]
                continue
            try:
                agent_in = AgentCreate.model_validate(snapshot)
            except ValidationError as exc:
                raise InputInvalid(errors_of(exc, "agents")) from exc
            created = await self.register_agent(session, caller, agent_in.model_dump(mode="json", by_alias=True))
            mapping[old_id] = by_name[name] = str(created["id"])
        steps = [
            {**step, "agent_id": mapping.get(str(step.get("agent_id")), step.get("agent_id"))}
            for step in source.get("steps") or []
            if isinstance(step, dict)
        ]
        fields = {
            k: source.get(k) for k in (*recipe_domain.UPDATABLE_FIELDS, "template_id") if source.get(k) is not None
        }
        fields.update(
            steps=steps,
            name=recipe_domain.copy_name(str(source.get("name") or template_id), await recipes.names(workspace_id)),
            is_featured=False,
        )
        try:
            recipe_in = RecipeCreate.model_validate(fields)
        except ValidationError as exc:
            raise InputInvalid(errors_of(exc, "recipe")) from exc
        data = recipe_in.model_dump(mode="json", exclude_unset=True)
        data["is_system"] = False
        return await self.create_recipe(
            session,
            caller,
            data,
            cloned_from={
                "listing_id": payload.listing_id,
                "template_id": recipe_domain.original_template_id(template_id),
            },
        )

"""Use cases: submit, approve, reject, install, follow a recipe's quality. Each runs in one transaction that appends the events,
updates the read model and writes the outbox rows (EventStore.append), or changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import SYSTEM_ACTOR, Actor, Envelope, EventPayload
from sous_events.events import ListingSubmitted, QualityAssessed, RecipeInstalled
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, EventStore
from sous_marketplace.adapters import projection, queries, replicas
from sous_marketplace.adapters.quality_client import QualityClient
from sous_marketplace.adapters.tables import listings
from sous_marketplace.domain.install import installed_template_id, plan_install
from sous_marketplace.domain.listing import (
    InvalidReason,
    InvalidTransition,
    Listing,
    QualityGateNotMet,
    choose_category,
)
from sous_marketplace.domain.quality_gate import QualityGate, QualityStanding
from sous_marketplace.domain.snapshot import public_agent, public_recipe, step_agent_ids
from sous_marketplace.domain.trust import is_trusted
from sous_service.errors import ApiError, InputInvalid, not_found
from sous_service.internal_context import InternalContext
from sous_service.logs import correlation_id_var

PRODUCER = "marketplace"
MAX_TEMPLATE_ID_ATTEMPTS = 8


def _actor(context: InternalContext) -> Actor:
    return Actor(user_id=context.user_id, auth_type=context.auth_type)


def _event(
    payload: EventPayload, context: InternalContext, *, workspace_id: str, aggregate_id: str, version: int
) -> Envelope:
    return make_event(
        payload,
        producer=PRODUCER,
        workspace_id=workspace_id,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        actor=_actor(context),
        correlation_id=correlation_id_var.get() or context.request_id,
    )


def duplicate_name(name: str) -> ApiError:
    return ApiError(409, "duplicate_listing", f"a listing named '{name}' already exists")


def gate_refusal(exc: QualityGateNotMet) -> ApiError:
    """409 `quality_gate_not_met`: the reason, and the numbers a moderator's screen shows next to it."""
    standing = exc.standing
    return ApiError(
        409,
        "quality_gate_not_met",
        str(exc),
        reason=exc.reason,
        quality={
            "score": standing.score,
            "assessed_runs": standing.assessed_runs,
            "score_trend": list(standing.trend),
            "min_score": exc.gate.min_score,
            "min_runs": exc.gate.min_runs,
        },
    )


@dataclass
class Marketplace:
    sessions: async_sessionmaker[AsyncSession]
    trusted_threshold: int
    store: EventStore
    gate: QualityGate
    trend_points: int = 10
    quality: QualityClient | None = None

    async def _record(self, session: AsyncSession, events: list[Envelope], expected_version: int) -> None:
        await self.store.append(session, events, expected_version=expected_version)
        for event in events:
            await projection.apply_event(session, event)

    async def standing(self, workspace_id: str, template_id: str) -> QualityStanding:
        """The recipe's quality from the replica; when the replica alone would fail the gate, from quality too,
        so a decision taken right after an assessment sees it (read-your-writes)."""
        async with self.sessions() as session:
            replica = await replicas.quality_standing(session, workspace_id, template_id, self.trend_points)
        if self.gate.verdict(replica).met or self.quality is None:
            return replica
        live = await self.quality.standing(workspace_id, template_id, self.trend_points)
        return replica if live is None else replica.fresher(live)

    async def submit(
        self, context: InternalContext, *, recipe_id: str, category: str | None, icon: str | None
    ) -> dict[str, Any]:
        workspace_id = context.workspace_id
        standing = await self.standing(workspace_id, recipe_id)
        try:
            async with self.sessions() as session, session.begin():
                recipe = await replicas.find_recipe(session, workspace_id, recipe_id)
                if recipe is None:
                    raise not_found("recipe", recipe_id)
                agent_ids = step_agent_ids(recipe)
                known = await replicas.find_agents(session, workspace_id, agent_ids)
                missing = [a for a in agent_ids if a not in known]
                if missing:
                    raise ApiError(
                        409, "agents_unavailable", f"the recipe's agents are not known yet: {', '.join(missing)}"
                    )
                name = str(recipe.get("name") or recipe_id)
                taken = await session.execute(
                    select(listings.c.id).where(
                        listings.c.name_key == projection.name_key(name),
                        listings.c.status.not_in(("rejected", "withdrawn")),
                    )
                )
                if taken.first() is not None:
                    raise duplicate_name(name)
                approved = await queries.approved_count(session, context.user_id)
                # A trusted creator publishes at once only what passes the quality gate; the rest waits.
                trusted = is_trusted(approved, self.trusted_threshold)
                auto = trusted and self.gate.verdict(standing).met
                listing_id = new_id()
                payload = ListingSubmitted(
                    listing_id=listing_id,
                    name=name,
                    category=choose_category(category, recipe.get("tags") or []),
                    creator_id=context.user_id,
                    source_workspace_id=workspace_id,
                    recipe_id=recipe_id,
                    auto_approved=auto,
                    icon=icon,
                    recipe=public_recipe(recipe),
                    agents=[public_agent(known[a]) for a in agent_ids],
                )
                event = _event(payload, context, workspace_id=workspace_id, aggregate_id=listing_id, version=1)
                await self._record(session, [event], 0)
        except IntegrityError as exc:  # a concurrent submission took the name first
            raise duplicate_name(name) from exc
        if auto:
            message = "Recipe published to the marketplace"
        elif trusted:
            message = f"Recipe submitted for review: {self.gate.verdict(standing).reason}"
        else:
            message = "Recipe submitted for review"
        return {"success": True, "message": message, "item_id": listing_id, "auto_approved": auto}

    async def _decide(self, context: InternalContext, listing_id: str, reason: str | None) -> dict[str, Any]:
        standing = QualityStanding()
        if reason is None:
            async with self.sessions() as session:
                row = await queries.get_listing(session, listing_id)
            if row is not None:
                standing = await self.standing(row["source_workspace_id"], row["recipe_id"])
        async with self.sessions() as session, session.begin():
            listing = Listing.from_events(listing_id, await self.store.load(session, "Listing", listing_id))
            if not listing.exists:
                raise not_found("listing", listing_id)
            try:
                payload: EventPayload = (
                    listing.approve(context.user_id, self.gate, standing)
                    if reason is None
                    else listing.reject(context.user_id, reason)
                )
            except InvalidTransition as exc:
                raise ApiError(409, "invalid_transition", str(exc)) from exc
            except QualityGateNotMet as exc:
                raise gate_refusal(exc) from exc
            except InvalidReason as exc:
                raise InputInvalid.single("reason", str(exc)) from exc
            event = _event(
                payload,
                context,
                workspace_id=listing.source_workspace_id,
                aggregate_id=listing_id,
                version=listing.version + 1,
            )
            try:
                await self._record(session, [event], listing.version)
            except ConcurrencyConflict as exc:
                raise ApiError(409, "conflict", f"listing '{listing_id}' was changed concurrently") from exc
            approved = await queries.approved_count(session, listing.creator_id)
        status = "approved" if reason is None else "rejected"
        return {
            "success": True,
            "message": f"Listing {status}",
            "listing_id": listing_id,
            "status": status,
            "creator_approved_count": approved,
        }

    async def approve(self, context: InternalContext, listing_id: str) -> dict[str, Any]:
        return await self._decide(context, listing_id, None)

    async def reject(self, context: InternalContext, listing_id: str, reason: str) -> dict[str, Any]:
        if not reason.strip():
            raise InputInvalid.single("reason", "a rejection needs a non-empty reason")
        return await self._decide(context, listing_id, reason)

    async def withdraw(self, context: InternalContext, listing_id: str, *, moderator: bool) -> dict[str, Any]:
        """Its creator (from the workspace it was submitted from) or a moderator; anyone else gets 404."""
        async with self.sessions() as session, session.begin():
            listing = Listing.from_events(listing_id, await self.store.load(session, "Listing", listing_id))
            owner = listing.creator_id == context.user_id and listing.source_workspace_id == context.workspace_id
            if not listing.exists or not (owner or moderator):
                raise not_found("listing", listing_id)
            try:
                payload = listing.withdraw(context.user_id)
            except InvalidTransition as exc:
                raise ApiError(409, "invalid_transition", str(exc)) from exc
            event = _event(
                payload,
                context,
                workspace_id=listing.source_workspace_id,
                aggregate_id=listing_id,
                version=listing.version + 1,
            )
            try:
                await self._record(session, [event], listing.version)
            except ConcurrencyConflict as exc:
                raise ApiError(409, "conflict", f"listing '{listing_id}' was changed concurrently") from exc
        return {"success": True, "message": "Listing withdrawn", "listing_id": listing_id, "status": "withdrawn"}

    async def install(self, context: InternalContext, listing_id: str) -> dict[str, Any]:
        workspace_id = context.workspace_id
        async with self.sessions() as session, session.begin():
            row = await queries.get_listing(session, listing_id)
            if row is None or row["status"] != "approved":
                raise not_found("listing", listing_id)
            recipe: dict[str, Any] = dict(row["recipe"])
            taken = await replicas.template_ids(session, workspace_id)
            original = str(recipe.get("template_id") or row["recipe_id"])
            # The install id gives the clone its template id suffix: draw again on the rare clash.
            install_id = str(uuid.uuid4())
            for _ in range(MAX_TEMPLATE_ID_ATTEMPTS):
                if installed_template_id(original, install_id) not in taken:
                    break
                install_id = str(uuid.uuid4())
            plan = plan_install(
                recipe=recipe,
                agents=list(row["agents"]),
                install_id=install_id,
                target_agents_by_name=await replicas.agents_by_name(session, workspace_id),
                target_recipe_names=await replicas.recipe_names(session, workspace_id),
            )
            payload = RecipeInstalled(
                install_id=install_id,
                listing_id=listing_id,
                target_workspace_id=workspace_id,
                recipe=plan.recipe,
                agents=plan.agents,
                installed_by=context.user_id,
            )
            event = _event(payload, context, workspace_id=workspace_id, aggregate_id=install_id, version=1)
            await self._record(session, [event], 0)
        return {
            "success": True,
            "message": f"Installing '{row['name']}' into this workspace",
            "install_id": install_id,
            "cloned_items": plan.cloned_items,
            "warnings": plan.warnings,
            "secrets_to_bind": plan.secrets_to_bind,
        }

    async def follow_quality(self, session: AsyncSession, event: Envelope) -> None:
        """On a recipe's new rolling score (the replica already holds it): flag its approved listings that fell
        below the gate, clear the flag of those that meet it again. Runs in the consumer's transaction."""
        payload = event.typed()
        if not isinstance(payload, QualityAssessed):
            return
        workspace_id, template_id = event.workspace_id, payload.recipe_id
        standing = await replicas.quality_standing(session, workspace_id, template_id, self.trend_points)
        for listing_id in await queries.approved_listing_ids(session, workspace_id, template_id):
            listing = Listing.from_events(listing_id, await self.store.load(session, "Listing", listing_id))
            change = listing.follow_quality(self.gate, standing, payload.execution_id)
            if change is None:
                continue
            followed = make_event(
                change,
                producer=PRODUCER,
                workspace_id=listing.source_workspace_id,
                aggregate_id=listing_id,
                aggregate_version=listing.version + 1,
                actor=SYSTEM_ACTOR,
                correlation_id=event.correlation_id,
                causation_id=event.event_id,
            )
            await self._record(session, [followed], listing.version)

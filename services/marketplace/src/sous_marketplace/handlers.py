"""Use cases: submit, approve, reject, install, follow a recipe's quality; one handler per command, each run
in a unit of work that appends the events, writes their outbox rows and applies the listings projection in
one transaction, or changes nothing.

Approve, reject and following quality decide from the Listing's event stream (`Listing.from_events`); a
listing that another writer changed meanwhile makes the append conflict, and the unit of work runs the
decision again on the new stream (which then refuses it as an invalid transition, or finds nothing to do).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import EventPayload
from sous_events.events import ListingSubmitted, RecipeInstalled
from sous_events.ids import new_id
from sous_events.store import EventStore
from sous_marketplace.adapters import projection, queries, replicas
from sous_marketplace.adapters.catalog_reads import CatalogReads
from sous_marketplace.adapters.quality_client import QualityClient
from sous_marketplace.adapters.tables import listings
from sous_marketplace.commands import (
    ApproveListing,
    FollowRecipeQuality,
    InstallListing,
    RejectListing,
    SubmitListing,
    WithdrawListing,
)
from sous_marketplace.config import MarketplaceSettings
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
from sous_service.domain_errors import Conflict, InputInvalid, NotFound
from sous_service.owner_reads import OwnerReads
from sous_service.unit_of_work import UnitOfWork, UnitOfWorks

PRODUCER = "marketplace"
MAX_TEMPLATE_ID_ATTEMPTS = 8


def unit_of_works(sessions: async_sessionmaker[AsyncSession], store: EventStore | None = None) -> UnitOfWorks:
    return UnitOfWorks(sessions, producer=PRODUCER, store=store, projector=projection.apply_event)


def duplicate_name(name: str) -> Conflict:
    return Conflict(f"a listing named '{name}' already exists", code="duplicate_listing")


def gate_refusal(exc: QualityGateNotMet) -> Conflict:
    """409 `quality_gate_not_met`: the reason, and the numbers a moderator's screen shows next to it."""
    standing = exc.standing
    return Conflict(
        str(exc),
        code="quality_gate_not_met",
        reason=exc.reason,
        quality={
            "score": standing.score,
            "assessed_runs": standing.assessed_runs,
            "score_trend": list(standing.trend),
            "min_score": exc.gate.min_score,
            "min_runs": exc.gate.min_runs,
        },
    )


@dataclass(frozen=True)
class MarketplaceHandlers:
    trusted_threshold: int
    gate: QualityGate
    trend_points: int = 10
    quality: QualityClient | None = None
    catalog: CatalogReads | None = None

    @classmethod
    def from_settings(cls, settings: MarketplaceSettings) -> MarketplaceHandlers:
        return cls(
            trusted_threshold=settings.trusted_creator_threshold,
            gate=QualityGate(min_score=settings.gate_min_score, min_runs=settings.gate_min_runs),
            trend_points=settings.score_trend_points,
            quality=QualityClient(settings.quality_url, settings.internal_secret),
            catalog=CatalogReads(
                OwnerReads(settings.catalog_url, settings.internal_secret, "catalog", reader="marketplace")
            ),
        )

    async def standing(self, session: AsyncSession, workspace_id: str, template_id: str) -> QualityStanding:
        """The recipe's quality from the replica; when the replica has no score yet or would fail the gate, from
        quality too, so a decision taken right after an assessment sees it (read-your-writes). A gate that admits
        unassessed recipes must not admit a recipe quality has scored low only because the replica lags."""
        replica = await replicas.quality_standing(session, workspace_id, template_id, self.trend_points)
        if (replica.score is not None and self.gate.verdict(replica).met) or self.quality is None:
            return replica
        live = await self.quality.standing(workspace_id, template_id, self.trend_points)
        return replica if live is None else replica.fresher(live)

    async def _agents_from_catalog(self, workspace_id: str, agent_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if self.catalog is None:
            return found
        for agent_id in agent_ids:
            if (agent := await self.catalog.agent(workspace_id, agent_id)) is not None:
                found[agent_id] = agent
        return found

    async def submit(self, command: SubmitListing, uow: UnitOfWork) -> dict[str, Any]:
        session, caller, recipe_id = uow.session, uow.caller, command.recipe_id
        standing = await self.standing(session, caller.workspace_id, recipe_id)
        recipe = await replicas.find_recipe(session, caller.workspace_id, recipe_id)
        if recipe is None and self.catalog is not None:  # created a moment ago: its event is on its way
            recipe = await self.catalog.recipe(caller.workspace_id, recipe_id)
        if recipe is None:
            raise NotFound("recipe", recipe_id)
        agent_ids = step_agent_ids(recipe)
        known = await replicas.find_agents(session, caller.workspace_id, agent_ids)
        known |= await self._agents_from_catalog(caller.workspace_id, [a for a in agent_ids if a not in known])
        missing = [a for a in agent_ids if a not in known]
        if missing:
            raise Conflict(f"the recipe's agents are not known yet: {', '.join(missing)}", code="agents_unavailable")
        name = str(recipe.get("name") or recipe_id)
        taken = await session.execute(
            select(listings.c.id).where(
                listings.c.name_key == projection.name_key(name),
                listings.c.status.not_in(("rejected", "withdrawn")),
            )
        )
        if taken.first() is not None:
            raise duplicate_name(name)
        # A trusted creator publishes at once only what passes the quality gate; the rest waits.
        trusted = is_trusted(await queries.approved_count(session, caller.user_id), self.trusted_threshold)
        auto = trusted and self.gate.verdict(standing).met
        listing_id = new_id()
        payload = ListingSubmitted(
            listing_id=listing_id,
            name=name,
            category=choose_category(command.category, recipe.get("tags") or []),
            creator_id=caller.user_id,
            source_workspace_id=caller.workspace_id,
            template_id=recipe_id,
            auto_approved=auto,
            icon=command.icon,
            recipe=public_recipe(recipe),
            agents=[public_agent(known[a]) for a in agent_ids],
        )
        try:
            await uow.record(payload, aggregate_id=listing_id, expected_version=0)
        except IntegrityError as exc:  # a concurrent submission took the name first
            raise duplicate_name(name) from exc
        if auto:
            message = "Recipe published to the marketplace"
        elif trusted:
            message = f"Recipe submitted for review: {self.gate.verdict(standing).reason}"
        else:
            message = "Recipe submitted for review"
        return {"success": True, "message": message, "item_id": listing_id, "auto_approved": auto}

    async def approve(self, command: ApproveListing, uow: UnitOfWork) -> dict[str, Any]:
        return await self._decide(uow, command.listing_id, None)

    async def reject(self, command: RejectListing, uow: UnitOfWork) -> dict[str, Any]:
        if not command.reason.strip():
            raise InputInvalid.single("reason", "a rejection needs a non-empty reason")
        return await self._decide(uow, command.listing_id, command.reason)

    async def _decide(self, uow: UnitOfWork, listing_id: str, reason: str | None) -> dict[str, Any]:
        standing = QualityStanding()
        if reason is None:
            row = await queries.get_listing(uow.session, listing_id)
            if row is not None:
                standing = await self.standing(uow.session, row["source_workspace_id"], row["recipe_id"])
        listing = Listing.from_events(listing_id, await uow.load("Listing", listing_id))
        if not listing.exists:
            raise NotFound("listing", listing_id)
        moderator = uow.caller.user_id
        try:
            payload: EventPayload = (
                listing.approve(moderator, self.gate, standing) if reason is None else listing.reject(moderator, reason)
            )
        except InvalidTransition as exc:
            raise Conflict(str(exc), code="invalid_transition") from exc
        except QualityGateNotMet as exc:
            raise gate_refusal(exc) from exc
        except InvalidReason as exc:
            raise InputInvalid.single("reason", str(exc)) from exc
        await uow.record(
            payload, aggregate_id=listing_id, expected_version=listing.version, workspace_id=listing.source_workspace_id
        )
        approved = await queries.approved_count(uow.session, listing.creator_id)
        status = "approved" if reason is None else "rejected"
        return {
            "success": True,
            "message": f"Listing {status}",
            "listing_id": listing_id,
            "status": status,
            "creator_approved_count": approved,
        }

    async def withdraw(self, command: WithdrawListing, uow: UnitOfWork) -> dict[str, Any]:
        """Its creator (from the workspace it was submitted from) or a moderator; anyone else gets 404."""
        listing_id, caller = command.listing_id, uow.caller
        listing = Listing.from_events(listing_id, await uow.load("Listing", listing_id))
        owner = listing.creator_id == caller.user_id and listing.source_workspace_id == caller.workspace_id
        if not listing.exists or not (owner or command.by_moderator):
            raise NotFound("listing", listing_id)
        try:
            payload = listing.withdraw(caller.user_id)
        except InvalidTransition as exc:
            raise Conflict(str(exc), code="invalid_transition") from exc
        await uow.record(
            payload, aggregate_id=listing_id, expected_version=listing.version, workspace_id=listing.source_workspace_id
        )
        return {"success": True, "message": "Listing withdrawn", "listing_id": listing_id, "status": "withdrawn"}

    async def install(self, command: InstallListing, uow: UnitOfWork) -> dict[str, Any]:
        session, caller, listing_id = uow.session, uow.caller, command.listing_id
        row = await queries.get_listing(session, listing_id)
        if row is None or row["status"] != "approved":
            raise NotFound("listing", listing_id)
        recipe: dict[str, Any] = dict(row["recipe"])
        taken = await replicas.template_ids(session, caller.workspace_id)
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
            target_agents_by_name=await replicas.agents_by_name(session, caller.workspace_id),
            target_recipe_names=await replicas.recipe_names(session, caller.workspace_id),
        )
        payload = RecipeInstalled(
            install_id=install_id,
            listing_id=listing_id,
            target_workspace_id=caller.workspace_id,
            recipe=plan.recipe,
            agents=plan.agents,
            installed_by=caller.user_id,
        )
        await uow.record(payload, aggregate_id=install_id, expected_version=0)
        return {
            "success": True,
            "message": f"Installing '{row['name']}' into this workspace",
            "install_id": install_id,
            "cloned_items": plan.cloned_items,
            "warnings": plan.warnings,
            "secrets_to_bind": plan.secrets_to_bind,
        }

    async def follow_quality(self, command: FollowRecipeQuality, uow: UnitOfWork) -> None:
        """On a recipe's new rolling score (the replica already holds it): flag its approved listings that fell
        below the gate, clear the flag of those that meet it again. Runs in the consumer's transaction."""
        workspace_id, session = uow.caller.workspace_id, uow.session
        listed = command.listing_ids
        if listed is None:
            listed = await queries.approved_listing_ids(session, workspace_id, command.template_id)
        if not listed:
            return  # most recipes are not listed: their standing (a query over all their runs) is not needed
        standing = await replicas.quality_standing(session, workspace_id, command.template_id, self.trend_points)
        for listing_id in listed:
            listing = Listing.from_events(listing_id, await uow.load("Listing", listing_id))
            change = listing.follow_quality(self.gate, standing, command.execution_id)
            if change is not None:
                await uow.record(
                    change,
                    aggregate_id=listing_id,
                    expected_version=listing.version,
                    workspace_id=listing.source_workspace_id,
                )

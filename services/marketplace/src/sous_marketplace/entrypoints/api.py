"""HTTP routes at their public paths (the gateway forwards them unchanged with the signed context)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_marketplace.adapters import queries
from sous_marketplace.commands import ApproveListing, InstallListing, RejectListing, SubmitListing, WithdrawListing
from sous_marketplace.domain.trust import is_trusted
from sous_marketplace.handlers import MarketplaceHandlers
from sous_service.caller import Caller
from sous_service.db import snapshot_session
from sous_service.domain_errors import NotFound
from sous_service.errors import ApiError, responses
from sous_service.internal_context import InternalContext
from sous_service.scopes import MARKETPLACE_SUBMIT, RECIPES_READ
from sous_service.unit_of_work import UnitOfWorks
from sous_service.web import Context, require_scope

MODERATE_SCOPE = "marketplace:moderate"
MODERATOR_ROLE = "moderator"


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(
        min_length=1,
        max_length=200,
        validation_alias=AliasChoices("template_id", "recipe_id"),
        # A recipe's id goes into the catalog's URL when the listing reads it: control characters never name one.
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The template id of a recipe of this workspace (formerly `recipe_id`, still accepted)",
    )
    category: str | None = Field(default=None, max_length=100)
    icon: str | None = Field(default=None, max_length=300)


class SubmitResult(BaseModel):
    success: bool
    message: str
    item_id: str
    auto_approved: bool


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")


class DecisionResult(BaseModel):
    success: bool
    message: str
    listing_id: str
    status: str
    creator_approved_count: int


class WithdrawResult(BaseModel):
    success: bool
    message: str
    listing_id: str
    status: str


class InstallResult(BaseModel):
    success: bool
    message: str
    install_id: str
    cloned_items: list[dict[str, Any]]
    warnings: list[str]
    # Agents created by the install that need a key of the installer's own: {agent_name, field, how}.
    secrets_to_bind: list[dict[str, Any]] = []


class ListingPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    skip: int
    limit: int


class SubmissionPage(ListingPage):
    approved_count: int
    trusted: bool
    trusted_threshold: int


def is_moderator(context: InternalContext) -> bool:
    return context.has_role(MODERATOR_ROLE) or context.has_scope(MODERATE_SCOPE)


def require_moderator(context: InternalContext) -> None:
    if not is_moderator(context):
        raise ApiError(
            403, "forbidden", f"moderation needs the role '{MODERATOR_ROLE}' or the scope '{MODERATE_SCOPE}'"
        )


@dataclass
class MarketplaceServices:
    uows: UnitOfWorks
    handlers: MarketplaceHandlers


def _marketplace(request: Request) -> MarketplaceServices:
    marketplace: MarketplaceServices = request.app.state.marketplace
    return marketplace


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return _marketplace(request).uows.sessions


async def _views(
    request: Request, session: AsyncSession, rows: list[RowMapping], view: Callable[[RowMapping], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Listings with their recipe's quality: assessed runs, score trend and the gate's verdict."""
    handlers = _marketplace(request).handlers
    standings = await queries.listing_standings(session, rows, handlers.trend_points)
    return [{**view(r), **queries.quality_fields(standings[r["id"]], handlers.gate)} for r in rows]


Skip = Query(0, ge=0, le=1_000_000, description="Items to skip")
Limit = Query(20, ge=1, le=100, description="Page size (1..100)")


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/api/workflow-recipes/submit",
        dependencies=[require_scope(MARKETPLACE_SUBMIT)],
        tags=["marketplace"],
        summary="Submit a recipe to the marketplace",
        description=(
            "Creates a listing from a recipe of the caller's workspace (its snapshot and the agents it needs, "
            "without secrets). Category: the given one, else the recipe's first tag, else 'General'. A trusted "
            "creator (enough approved listings) publishes at once; other submissions wait for moderation."
        ),
        response_model=SubmitResult,
        responses=responses(409),
    )
    async def submit(body: SubmitBody, context: Context, request: Request) -> dict[str, Any]:
        svc = _marketplace(request)
        command = SubmitListing(recipe_id=body.template_id, category=body.category, icon=body.icon)
        return await svc.uows.run(svc.handlers.submit, command, Caller.from_context(context))

    @router.post(
        "/api/workflow-recipes/install/{listing_id}",
        dependencies=[require_scope(MARKETPLACE_SUBMIT)],
        tags=["marketplace"],
        summary="Install a listing into this workspace",
        description=(
            "Publishes RecipeInstalled: the catalog clones the recipe into the caller's workspace (unique "
            "template_id, ' (Copy)' on a name clash) and creates the agents it needs or maps them to agents of "
            "the same name. Only approved listings can be installed. The answer names what will be cloned and, in "
            "`secrets_to_bind`, the created agents that need a key of the installer's own (listings carry no "
            "secret references of their source)."
        ),
        response_model=InstallResult,
        responses=responses(),
    )
    async def install(listing_id: str, context: Context, request: Request) -> dict[str, Any]:
        svc = _marketplace(request)
        command = InstallListing(listing_id=listing_id)
        return await svc.uows.run(svc.handlers.install, command, Caller.from_context(context))

    @router.get(
        "/api/marketplace/listings",
        dependencies=[require_scope(RECIPES_READ)],
        tags=["marketplace"],
        summary="Browse approved listings",
        description=(
            "Approved listings of every workspace, filtered by category, search text and `featured` (approved and "
            "meeting the quality gate; a listing flagged for its quality is not featured), sorted (newest first, most "
            "installs, best quality, or by name, case-insensitive) and paged. Each listing shows its recipe's rolling "
            "`quality_score`, `assessed_runs`, `score_trend` (the latest rolling scores, oldest first) and "
            "`quality_gate` (`min_score`, `min_runs`, `met`, `reason`)."
        ),
        response_model=ListingPage,
        responses=responses(),
    )
    async def browse(
        context: Context,
        request: Request,
        category: str | None = Query(None, max_length=100),
        search: str | None = Query(None, max_length=200),
        sort_by: queries.SortBy = Query("newest"),
        featured: bool | None = Query(None, description="Only featured (true) or only not featured (false)"),
        skip: int = Skip,
        limit: int = Limit,
    ) -> dict[str, Any]:
        async with snapshot_session(_sessions(request)) as session:
            page = await queries.browse(
                session, category=category, search=search, sort_by=sort_by, skip=skip, limit=limit, featured=featured
            )
            items = await _views(request, session, page.items, queries.public_view)
        return {
            "items": items,
            "total": page.total,
            "skip": skip,
            "limit": limit,
        }

    @router.get(
        "/api/marketplace/listings/{listing_id}",
        dependencies=[require_scope(RECIPES_READ)],
        tags=["marketplace"],
        summary="One listing",
        description=(
            "An approved listing with its install count, the source recipe's rolling quality score, assessed "
            "runs, score trend and the quality gate's verdict, and whether it is featured or flagged. A pending or "
            "rejected listing is visible only to its creator and to moderators (404 for anyone else), who also "
            "see `flag_reason` and `flagged_at`."
        ),
        responses=responses(),
    )
    async def detail(listing_id: str, context: Context, request: Request) -> dict[str, Any]:
        async with snapshot_session(_sessions(request)) as session:
            row = await queries.get_listing(session, listing_id)
            if row is None:
                raise NotFound("listing", listing_id)
            owner = row["creator_id"] == context.user_id and row["source_workspace_id"] == context.workspace_id
            if owner or is_moderator(context):
                return (await _views(request, session, [row], queries.submission_view))[0]
            if row["status"] != "approved":
                raise NotFound("listing", listing_id)
            return (await _views(request, session, [row], queries.public_view))[0]

    @router.delete(
        "/api/marketplace/listings/{listing_id}",
        dependencies=[require_scope(MARKETPLACE_SUBMIT)],
        tags=["marketplace"],
        summary="Withdraw a listing",
        description=(
            "Takes a pending or approved listing off the marketplace (ListingWithdrawn): its creator, from the "
            "workspace it was submitted from, or a moderator. It leaves browsing, the queue and installs; copies "
            "already installed stay; its name is free again. 404 for anyone else, 409 when rejected or withdrawn."
        ),
        response_model=WithdrawResult,
        responses=responses(409),
    )
    async def withdraw(listing_id: str, context: Context, request: Request) -> dict[str, Any]:
        svc = _marketplace(request)
        command = WithdrawListing(listing_id=listing_id, by_moderator=is_moderator(context))
        return await svc.uows.run(svc.handlers.withdraw, command, Caller.from_context(context))

    @router.get(
        "/api/marketplace/queue",
        tags=["moderation"],
        summary="The moderation queue",
        description=(
            "What needs a moderator: pending listings, oldest first, then approved listings flagged because their "
            "recipe's rolling quality score fell below the gate (`flagged`, `flag_reason`). `kind` narrows it to "
            "`pending` or `flagged`. Each item shows its quality: score, assessed runs, trend and the gate's "
            "verdict. Role 'moderator' or scope 'marketplace:moderate'."
        ),
        response_model=ListingPage,
        responses=responses(),
    )
    async def approval_queue(
        context: Context,
        request: Request,
        kind: Literal["all", "pending", "flagged"] = Query("all", description="Which listings need a moderator"),
        skip: int = Skip,
        limit: int = Limit,
    ) -> dict[str, Any]:
        require_moderator(context)
        async with snapshot_session(_sessions(request)) as session:
            page = await queries.queue(session, skip=skip, limit=limit, kind=kind)
            items = await _views(request, session, page.items, queries.submission_view)
        return {
            "items": items,
            "total": page.total,
            "skip": skip,
            "limit": limit,
        }

    @router.post(
        "/api/marketplace/listings/{listing_id}/approve",
        tags=["moderation"],
        summary="Approve a pending listing",
        description=(
            "Publishes ListingApproved; counts toward the creator's trust; the listing is featured. 409 "
            "`invalid_transition` unless pending. 409 `quality_gate_not_met` when the source recipe's rolling "
            "quality score is below the minimum or it has fewer assessed runs than the gate asks: the answer "
            "carries `reason` and `quality` (`score`, `assessed_runs`, `score_trend`, `min_score`, `min_runs`)."
        ),
        response_model=DecisionResult,
        responses=responses(409),
    )
    async def approve(listing_id: str, context: Context, request: Request) -> dict[str, Any]:
        require_moderator(context)
        svc = _marketplace(request)
        command = ApproveListing(listing_id=listing_id)
        return await svc.uows.run(svc.handlers.approve, command, Caller.from_context(context))

    @router.post(
        "/api/marketplace/listings/{listing_id}/reject",
        tags=["moderation"],
        summary="Reject a pending listing",
        description="Publishes ListingRejected with the reason the creator sees. 409 unless pending.",
        response_model=DecisionResult,
        responses=responses(409),
    )
    async def reject(listing_id: str, body: RejectBody, context: Context, request: Request) -> dict[str, Any]:
        require_moderator(context)
        svc = _marketplace(request)
        command = RejectListing(listing_id=listing_id, reason=body.reason)
        return await svc.uows.run(svc.handlers.reject, command, Caller.from_context(context))

    @router.get(
        "/api/marketplace/submissions",
        dependencies=[require_scope(MARKETPLACE_SUBMIT)],
        tags=["marketplace"],
        summary="My submissions",
        description=(
            "The caller's own listings from this workspace with their status and rejection reason, and the "
            "caller's trust: approved listings counted per creator against the trusted threshold."
        ),
        response_model=SubmissionPage,
        responses=responses(),
    )
    async def my_submissions(
        context: Context,
        request: Request,
        status: Literal["pending", "approved", "rejected"] | None = Query(None),
        skip: int = Skip,
        limit: int = Limit,
    ) -> dict[str, Any]:
        threshold = _marketplace(request).handlers.trusted_threshold
        async with snapshot_session(_sessions(request)) as session:
            page = await queries.submissions(
                session,
                creator_id=context.user_id,
                workspace_id=context.workspace_id,
                status=status,
                skip=skip,
                limit=limit,
            )
            approved = await queries.approved_count(session, context.user_id)
            items = await _views(request, session, page.items, queries.submission_view)
        return {
            "items": items,
            "total": page.total,
            "skip": skip,
            "limit": limit,
            "approved_count": approved,
            "trusted": is_trusted(approved, threshold),
            "trusted_threshold": threshold,
        }

    return router

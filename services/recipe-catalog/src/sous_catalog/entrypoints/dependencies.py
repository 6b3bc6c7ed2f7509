"""What every catalog route depends on: the caller (with the scope the route needs), a read session, and
the catalog's units of work and handlers.

Every route depends on the gateway's signed context (401 without it) and works inside the caller's
workspace only: another workspace's recipe or agent is 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.handlers import CatalogHandlers
from sous_catalog.handlers.versions import Promotions
from sous_service.caller import Caller
from sous_service.db import snapshot_session
from sous_service.domain_errors import InputInvalid
from sous_service.errors import ApiError
from sous_service.internal_context import InternalContext
from sous_service.unit_of_work import UnitOfWorks
from sous_service.web import Context

READ_SCOPE = "recipes:read"
WRITE_SCOPE = "recipes:write"
MAX_SKIP = 1_000_000


@dataclass
class CatalogServices:
    uows: UnitOfWorks
    handlers: CatalogHandlers
    promotions: Promotions


def services(request: Request) -> CatalogServices:
    found: CatalogServices = request.app.state.catalog
    return found


Services = Annotated[CatalogServices, Depends(services)]


def caller_of(ctx: InternalContext, scope: str) -> Caller:
    if not ctx.has_scope(scope):
        raise ApiError(403, "insufficient_scope", f"this request needs the '{scope}' scope")
    return Caller.from_context(ctx)


def read_caller(ctx: Context) -> Caller:
    return caller_of(ctx, READ_SCOPE)


def write_caller(ctx: Context) -> Caller:
    return caller_of(ctx, WRITE_SCOPE)


# Scope checks are dependencies so they answer 403 before the body is validated.
ReadCaller = Annotated[Caller, Depends(read_caller)]
WriteCaller = Annotated[Caller, Depends(write_caller)]


async def read_session(svc: Services) -> AsyncIterator[AsyncSession]:
    # A page and its total, a recipe and its agents: one snapshot, so a write in between cannot split them.
    async with snapshot_session(svc.uows.sessions) as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(read_session)]


def parse_if_match(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit() or len(text) > 9:
        raise InputInvalid.single("If-Match", "must be the recipe's revision number", "if_match")
    return int(text)

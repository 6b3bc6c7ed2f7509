"""`GET /api/session`: who the presented credential is, so a client can offer the workspaces it allows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sous_gateway.auth.principal import Principal
from sous_gateway.components import Components
from sous_service.errors import responses

# The gateway's own authentication step (credentials, failure limits, rate limit), given by the app factory.
Authenticate = Callable[[Request, Components], Awaitable[Principal]]


class SessionView(BaseModel):
    user_id: str
    auth_type: Literal["jwt", "api_key"]
    workspaces: list[str] = Field(description="The workspaces this credential may act in (one for an API key)")
    roles: list[str]
    scopes: list[str]
    key_id: str | None = None


def session_router(authenticate: Authenticate) -> APIRouter:
    router = APIRouter(tags=["session"])

    @router.get(
        "/api/session",
        response_model=SessionView,
        summary="The caller's identity",
        description=(
            "The user, workspaces, roles and scopes of the credential sent (Bearer JWT or API key). Needs no "
            "scope; the console uses it to choose a workspace and to show only what the caller may do."
        ),
        responses=responses(429),
    )
    async def session(request: Request) -> SessionView:
        components: Components = request.app.state.components
        principal = await authenticate(request, components)
        return SessionView(
            user_id=principal.user_id,
            auth_type=principal.auth_type,
            workspaces=list(principal.workspaces),
            roles=list(principal.roles),
            scopes=list(principal.scopes),
            key_id=principal.key_id,
        )

    return router

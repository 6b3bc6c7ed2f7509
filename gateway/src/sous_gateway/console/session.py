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
    workspace: str | None = Field(
        description="The workspace `roles` and `scopes` apply to: X-Workspace-ID, or the only one; null when "
        "a multi-workspace caller chose none (then they are what applies in every workspace)"
    )
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
            "The user and workspaces of the credential sent (Bearer JWT or API key), with its roles and scopes "
            "in the workspace named by X-Workspace-ID (or its only one). Needs no scope; the console uses it to "
            "choose a workspace and to show only what the caller may do there."
        ),
        responses=responses(429),
    )
    async def session(request: Request) -> SessionView:
        components: Components = request.app.state.components
        principal = await authenticate(request, components)
        requested = request.headers.get("x-workspace-id")
        workspace: str | None = None
        if requested or len(principal.workspaces) == 1:
            workspace = principal.select_workspace(requested)
            principal = principal.acting_in(workspace)
        return SessionView(
            user_id=principal.user_id,
            auth_type=principal.auth_type,
            workspaces=list(principal.workspaces),
            workspace=workspace,
            roles=list(principal.roles),
            scopes=list(principal.scopes),
            key_id=principal.key_id,
        )

    return router

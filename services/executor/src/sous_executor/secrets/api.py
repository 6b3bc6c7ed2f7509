"""/api/secrets: workspace admins store, list and delete secrets; values are write-only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sous_executor.secrets.store import SecretStore
from sous_service.errors import ApiError, not_found, responses
from sous_service.internal_context import InternalContext
from sous_service.web import Context

SECRETS_ADMIN = "secrets:admin"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$"
SecretName = Annotated[str, Path(pattern=NAME_PATTERN, description="Letters, digits, `_ . -`; at most 128")]


class SecretBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(min_length=1, max_length=16_384, description="Stored encrypted; never returned")

    @field_validator("value")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid unicode text") from None
        return value


class SecretMeta(BaseModel):
    name: str
    created_by: str
    created_at: str
    updated_at: str


class SecretList(BaseModel):
    items: list[SecretMeta]
    total: int


def _admin(ctx: InternalContext) -> str:
    if not ctx.has_scope(SECRETS_ADMIN):
        raise ApiError(403, "forbidden", f"managing secrets needs the {SECRETS_ADMIN} scope (workspace admins)")
    if not ctx.workspace_id:
        raise ApiError(403, "forbidden", "secrets belong to a workspace")
    return ctx.workspace_id


def build_secrets_router(store: SecretStore) -> APIRouter:
    router = APIRouter(tags=["secrets"])

    @router.get(
        "/api/secrets",
        response_model=SecretList,
        summary="List secrets",
        description="Names and timestamps of this workspace's secrets; values are never returned.",
        responses=responses(),
    )
    async def list_secrets(ctx: Context) -> dict[str, Any]:
        items = await store.list(_admin(ctx))
        return {"items": items, "total": len(items)}

    @router.put(
        "/api/secrets/{name}",
        response_model=SecretMeta,
        status_code=201,
        summary="Create or replace a secret",
        description="Stores the value encrypted (envelope encryption) under this name in the workspace: 201 when "
        "created, 200 when replaced. Agents reference it as `model_config.api_key_secret`, webhooks as "
        "`schedule_config.webhook_secret`. The value is never returned, logged or put in events.",
        responses={**responses(), 200: {"model": SecretMeta, "description": "Replaced"}},
    )
    async def put_secret(name: SecretName, body: SecretBody, ctx: Context, response: Response) -> dict[str, Any]:
        meta, created = await store.put(_admin(ctx), name, body.value, ctx.user_id)
        response.status_code = 201 if created else 200
        return meta

    @router.get(
        "/api/secrets/{name}",
        response_model=SecretMeta,
        summary="Secret metadata",
        description="Name and timestamps of one secret; the value is never returned.",
        responses=responses(),
    )
    async def get_secret(name: SecretName, ctx: Context) -> dict[str, Any]:
        meta = await store.get(_admin(ctx), name)
        if meta is None:
            raise not_found("secret", name)
        return meta

    @router.delete(
        "/api/secrets/{name}",
        status_code=204,
        summary="Delete a secret",
        description="Agents and webhooks that reference it fail (with the same error as any missing secret).",
        responses=responses(),
    )
    async def delete_secret(name: SecretName, ctx: Context) -> Response:
        if not await store.delete(_admin(ctx), name):
            raise not_found("secret", name)
        return Response(status_code=204)

    return router

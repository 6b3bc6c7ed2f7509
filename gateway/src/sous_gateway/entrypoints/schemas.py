"""Request and response bodies of the gateway's own routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from sous_gateway.adapters.key_repository import ApiKeyRecord


class CreateApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="A label for people, e.g. 'CI pipeline'")
    scopes: list[str] = Field(min_length=1, max_length=16, description="Scopes the key carries")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="Omit for no expiry")


class ApiKeyView(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    workspace_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyView:
        return cls(
            id=record.id,
            name=record.name,
            prefix=record.prefix,
            scopes=list(record.scopes),
            workspace_id=record.workspace_id,
            created_by=record.created_by,
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            last_used_at=record.last_used_at,
        )


class CreatedApiKey(ApiKeyView):
    key: str = Field(description="The full key `sous_<id>_<secret>`; shown only in this response")


class ApiKeyList(BaseModel):
    items: list[ApiKeyView]
    total: int

"""Reading and writing API key records (no secrets ever reach this layer, only their hashes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_gateway.adapters.tables import api_keys


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    workspace_id: str
    name: str
    scopes: tuple[str, ...]
    hash: bytes
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> ApiKeyRecord:
        return cls(
            id=row["id"],
            workspace_id=row["workspace_id"],
            name=row["name"],
            scopes=tuple(row["scopes"]),
            hash=bytes(row["hash"]),
            prefix=row["prefix"],
            created_by=row["created_by"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
            last_used_at=row["last_used_at"],
        )


class KeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: ApiKeyRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=record.id,
                    workspace_id=record.workspace_id,
                    name=record.name,
                    scopes=list(record.scopes),
                    hash=record.hash,
                    prefix=record.prefix,
                    created_by=record.created_by,
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                )
            )

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).mappings().first()
        return ApiKeyRecord.from_row(row) if row else None

    async def list_for_workspace(self, workspace_id: str) -> list[ApiKeyRecord]:
        query = (
            select(api_keys)
            .where(api_keys.c.workspace_id == workspace_id)
            .order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [ApiKeyRecord.from_row(row) for row in rows]

    async def revoke(self, workspace_id: str, key_id: str, when: datetime) -> ApiKeyRecord | None:
        """Revoke a key of this workspace (idempotent: the first revocation time is kept)."""
        query = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.workspace_id == workspace_id)
            .values(revoked_at=func.coalesce(api_keys.c.revoked_at, when))
            .returning(*api_keys.c)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(query)).mappings().first()
        return ApiKeyRecord.from_row(row) if row else None

    async def touch(self, key_id: str, when: datetime) -> None:
        query = (
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .where((api_keys.c.last_used_at.is_(None)) | (api_keys.c.last_used_at < when))
            .values(last_used_at=when)
        )
        async with self._engine.begin() as conn:
            await conn.execute(query)

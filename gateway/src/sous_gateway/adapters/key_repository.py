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
    parent_key_id: str | None = None

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
            parent_key_id=row["parent_key_id"],
        )


class KeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: ApiKeyRecord, max_active: int) -> bool:
        """Insert unless the workspace already has `max_active` usable keys (then False). Creations in one
        workspace are serialised, so concurrent requests cannot overshoot the cap together."""
        async with self._engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("api_keys:" + record.workspace_id))))
            active = (
                await conn.execute(
                    select(func.count())
                    .select_from(api_keys)
                    .where(
                        api_keys.c.workspace_id == record.workspace_id,
                        api_keys.c.revoked_at.is_(None),
                        (api_keys.c.expires_at.is_(None)) | (api_keys.c.expires_at > func.now()),
                    )
                )
            ).scalar_one()
            if active >= max_active:
                return False
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
                    parent_key_id=record.parent_key_id,
                )
            )
        return True

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
        """Revoke a key of this workspace and every key minted from it, transitively (idempotent: the
        first revocation time is kept)."""
        root = select(api_keys.c.id).where(api_keys.c.id == key_id, api_keys.c.workspace_id == workspace_id)
        tree = root.cte("minted", recursive=True)
        tree = tree.union(select(api_keys.c.id).where(api_keys.c.parent_key_id == tree.c.id))
        query = (
            update(api_keys)
            .where(api_keys.c.id.in_(select(tree.c.id)))
            .values(revoked_at=func.coalesce(api_keys.c.revoked_at, when))
            .returning(*api_keys.c)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).mappings().all()
        found = [ApiKeyRecord.from_row(row) for row in rows if row["id"] == key_id]
        return found[0] if found else None

    async def touch(self, key_id: str, when: datetime) -> None:
        query = (
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .where((api_keys.c.last_used_at.is_(None)) | (api_keys.c.last_used_at < when))
            .values(last_used_at=when)
        )
        async with self._engine.begin() as conn:
            await conn.execute(query)

"""Reading and writing sealed secrets; values leave this module only through `reveal` (for the engine)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_executor.secrets.crypto import Keyring, Sealed, SecretCryptoError
from sous_executor.secrets.tables import workspace_secrets
from sous_service.ordering import by_name

logger = logging.getLogger("sous.executor.secrets")
T = workspace_secrets.c


def _meta(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


class SecretStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: Keyring) -> None:
        self.sessions = sessions
        self.keyring = keyring

    async def put(self, workspace_id: str, name: str, value: str, user: str) -> tuple[dict[str, Any], bool]:
        """Create or replace; returns the metadata and whether the secret is new."""
        sealed = self.keyring.seal(workspace_id, name, value)
        now = datetime.now(UTC)
        values = {"kek_id": sealed.kek_id, "wrapped_key": sealed.wrapped_key, "ciphertext": sealed.ciphertext}
        async with self.sessions() as session, session.begin():
            existed = (
                await session.execute(
                    select(T.name).where(T.workspace_id == workspace_id, T.name == name).with_for_update()
                )
            ).first() is not None
            statement = insert(workspace_secrets).values(
                workspace_id=workspace_id, name=name, created_by=user, created_at=now, updated_at=now, **values
            )
            statement = statement.on_conflict_do_update(
                index_elements=[T.workspace_id, T.name], set_={**values, "updated_at": now}
            )
            await session.execute(statement)
            row = (
                await session.execute(select(workspace_secrets).where(T.workspace_id == workspace_id, T.name == name))
            ).one()
        logger.info(
            "secret %r of workspace %s %s by %s", name, workspace_id, "replaced" if existed else "created", user
        )
        return _meta(row), not existed

    async def list(self, workspace_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(workspace_secrets).where(T.workspace_id == workspace_id).order_by(*by_name(T.name))
                )
            ).all()
        return [_meta(r) for r in rows]

    async def get(self, workspace_id: str, name: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            row = (
                await session.execute(select(workspace_secrets).where(T.workspace_id == workspace_id, T.name == name))
            ).first()
        return None if row is None else _meta(row)

    async def delete(self, workspace_id: str, name: str) -> bool:
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                delete(workspace_secrets).where(T.workspace_id == workspace_id, T.name == name)
            )
        deleted = bool(result.rowcount)  # type: ignore[attr-defined]
        if deleted:
            logger.info("secret %r of workspace %s deleted", name, workspace_id)
        return deleted

    async def reveal(self, workspace_id: str, name: str) -> str | None:
        """The plaintext, or None when missing or undecryptable (callers report both the same way)."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(T.kek_id, T.wrapped_key, T.ciphertext).where(T.workspace_id == workspace_id, T.name == name)
                )
            ).first()
        if row is None:
            return None
        try:
            return self.keyring.open(
                workspace_id, name, Sealed(row.kek_id, bytes(row.wrapped_key), bytes(row.ciphertext))
            )
        except SecretCryptoError:
            logger.error("secret %r of workspace %s cannot be decrypted (kek %s)", name, workspace_id, row.kek_id)
            return None

    async def rewrap_all(self, batch: int = 500) -> int:
        """Re-wrap every data key not under the active KEK; returns how many rows changed."""
        changed = 0
        active = self.keyring.active_id
        while True:
            async with self.sessions() as session, session.begin():
                rows = (
                    await session.execute(
                        select(workspace_secrets)
                        .where(T.kek_id != active)
                        .limit(batch)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                if not rows:
                    return changed
                for row in rows:
                    sealed = self.keyring.rewrap(
                        row.workspace_id, row.name, Sealed(row.kek_id, bytes(row.wrapped_key), bytes(row.ciphertext))
                    )
                    await session.execute(
                        update(workspace_secrets)
                        .where(T.workspace_id == row.workspace_id, T.name == row.name)
                        .values(kek_id=sealed.kek_id, wrapped_key=sealed.wrapped_key)
                    )
                    changed += 1

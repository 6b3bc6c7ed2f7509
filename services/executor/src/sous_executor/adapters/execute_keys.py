"""Idempotency keys of execute requests, taken in the transaction that starts the execution (or workflow run).

The key's row is the start's first write: a concurrent request with the same key waits on it until the first
commits (then finds it) or rolls back (then takes the key itself). A start that is refused (the workspace's
concurrency limit, its budget) rolls its key back with it, so a client retrying after a 429 is not answered
with an execution that never started.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sous_executor.adapters.tables import execute_keys

K = execute_keys.c


@dataclass(frozen=True)
class KeyedStart:
    """The start that holds a key: what it started, and the digest of the request it came with."""

    started_id: str
    request_sha256: str


def request_digest(target: str, input_data: dict[str, Any] | None) -> str:
    """What makes two execute requests the same one: what they start (`recipe:<template id>`,
    `workflow:<id>`) and the inputs as sent."""
    canonical = json.dumps(
        {"target": target, "input_data": input_data or {}},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def take_key(
    session: AsyncSession, workspace_id: str, key: str, digest: str, started_id: str, ttl_s: float
) -> KeyedStart | None:
    """None when this request took the key (unused, or last used more than `ttl_s` ago); else who holds it."""
    now = datetime.now(UTC)
    expired_before = now - timedelta(seconds=ttl_s)
    statement = insert(execute_keys).values(
        workspace_id=workspace_id,
        idempotency_key=key,
        request_sha256=digest,
        started_id=started_id,
        created_at=now,
    )
    taken = statement.on_conflict_do_update(
        index_elements=[K.workspace_id, K.idempotency_key],
        set_={
            "request_sha256": statement.excluded.request_sha256,
            "started_id": statement.excluded.started_id,
            "created_at": statement.excluded.created_at,
        },
        where=K.created_at < expired_before,
    ).returning(K.started_id)
    if (await session.execute(taken)).first() is not None:
        # The workspace's expired keys go with its next keyed start: the table holds one TTL of keys.
        await session.execute(delete(execute_keys).where(K.workspace_id == workspace_id, K.created_at < expired_before))
        return None
    held = (
        await session.execute(
            select(K.started_id, K.request_sha256).where(K.workspace_id == workspace_id, K.idempotency_key == key)
        )
    ).one()
    return KeyedStart(started_id=held.started_id, request_sha256=held.request_sha256)

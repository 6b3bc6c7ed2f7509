"""The counts a start is admitted on, taken under the workspace's lock as the start's last statement.

The lock (a transaction-scoped advisory lock per workspace) is held from this statement to the commit only:
starts of one workspace do all their other work at the same time, and take turns just for the count and the
commit. Counting under the lock, after the start's own execution row is written, keeps the limits exact across
instances: whoever counts next sees every start that committed before it, and its own row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from sous_executor.adapters.repositories import ACTIVE_STATUSES

_ADMIT = text("SELECT active, today FROM sous_admit_start(:workspace, :lock, :active, :since)")


@dataclass(frozen=True)
class WorkspaceLoad:
    """The workspace's executions in flight and started since `since`, this start's own included."""

    active: int
    today: int


def lock_key(workspace_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"sous-exec-ws:{workspace_id}".encode()).digest()[:8], "big", signed=True)


async def count_under_lock(session: AsyncSession, workspace_id: str, since: datetime | None) -> WorkspaceLoad:
    """Take the workspace's lock until the transaction ends, then count (`since` None: runs today not counted)."""
    row = (
        await session.execute(
            _ADMIT,
            {
                "workspace": workspace_id,
                "lock": lock_key(workspace_id),
                "active": list(ACTIVE_STATUSES),
                "since": since,
            },
        )
    ).one()
    return WorkspaceLoad(active=int(row.active), today=int(row.today))

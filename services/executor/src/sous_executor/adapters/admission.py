"""A start's admission, decided at its commit under the workspace's lock (migration 0010).

The start's statement writes a `start_admissions` row with the workspace's limits next to its run; the row's
deferred trigger, at the commit, takes a transaction-scoped advisory lock per workspace and counts the
workspace's executions, this start's own included. Starts of one workspace do all their work at the same time
and take turns only for the count and the commit's flush: no round trip to the client happens under the lock.
Counting under the lock at the commit keeps the limits exact across instances: whoever counts next sees every
start that committed before it.

A refusal fails the commit with SQLSTATE SA429 (executions in flight) or SA430 (runs today) and
'<count>/<limit>' in its DETAIL; `refusal_of` reads it back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sous_events.failures import sqlstate

# Columns of the row, in the order `parameters` gives them.
COLUMNS = ("execution_id", "workspace_id", "lock_key", "max_active", "runs_per_day", "since", "active_statuses")
TOO_MANY_ACTIVE = "SA429"
TOO_MANY_TODAY = "SA430"


@dataclass(frozen=True)
class Admission:
    """What a start is admitted on: its workspace's limits (`runs_per_day` 0: not counted, `since` None)."""

    workspace_id: str
    max_active: int
    runs_per_day: int
    since: datetime | None
    active_statuses: tuple[str, ...]

    def parameters(self, execution_id: str) -> list[object]:
        return [
            execution_id,
            self.workspace_id,
            lock_key(self.workspace_id),
            self.max_active,
            self.runs_per_day if self.since is not None else 0,
            self.since,
            list(self.active_statuses),
        ]


@dataclass(frozen=True)
class Refusal:
    """A start refused at its commit: which limit (`TOO_MANY_ACTIVE` or `TOO_MANY_TODAY`), the count that
    passed it (this start's own run included) and the limit's value."""

    kind: str
    counted: int
    limit: int


def lock_key(workspace_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"sous-exec-ws:{workspace_id}".encode()).digest()[:8], "big", signed=True)


def insert_sql(first: int) -> str:
    """The CTE that writes the admission row, its parameters numbered from `first`."""
    casts = ("text", "text", "bigint", "int", "int", "timestamptz", "varchar[]")
    values = ", ".join(f"${first + i}::{cast}" for i, cast in enumerate(casts))
    return f"admission AS (INSERT INTO start_admissions ({', '.join(COLUMNS)}) VALUES ({values})), "


def refusal_of(exc: BaseException) -> Refusal | None:
    """The admission refusal a failed commit carries, or None when it failed for another reason."""
    code = sqlstate(exc)
    if code not in (TOO_MANY_ACTIVE, TOO_MANY_TODAY):
        return None
    counted, _, limit = _detail(exc).partition("/")
    return Refusal(code, _number(counted), _number(limit))


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _detail(exc: BaseException) -> str:
    seen: set[int] = set()
    candidate: BaseException | None = exc
    while candidate is not None and id(candidate) not in seen:
        seen.add(id(candidate))
        detail = getattr(candidate, "detail", None)
        if isinstance(detail, str):
            return detail
        candidate = getattr(candidate, "orig", None) or candidate.__cause__
    return ""

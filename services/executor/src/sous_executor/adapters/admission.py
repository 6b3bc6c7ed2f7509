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

from sous_events.failures import error_detail, sqlstate

# Columns of the row with their types, in the order `parameters` gives them.
COLUMNS = (
    ("execution_id", "text"),
    ("workspace_id", "text"),
    ("lock_key", "bigint"),
    ("max_active", "int"),
    ("runs_per_day", "int"),
    ("since", "timestamptz"),
    ("active_statuses", "varchar[]"),
)
TOO_MANY_ACTIVE = "SA429"
TOO_MANY_TODAY = "SA430"


@dataclass(frozen=True)
class Admission:
    """What a start is admitted on: its workspace's limits (`runs_per_day` 0: not counted, and `since`, the
    start of the day they are counted from, None)."""

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
            self.runs_per_day,
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
    names = ", ".join(name for name, _ in COLUMNS)
    values = ", ".join(f"${first + i}::{cast}" for i, (_, cast) in enumerate(COLUMNS))
    return f"admission AS (INSERT INTO start_admissions ({names}) VALUES ({values})), "


def refusal_of(exc: BaseException) -> Refusal | None:
    """The admission refusal a failed commit carries, or None when it failed for another reason."""
    code = sqlstate(exc)
    if code not in (TOO_MANY_ACTIVE, TOO_MANY_TODAY):
        return None
    counted, _, limit = error_detail(exc).partition("/")
    return Refusal(code, _number(counted), _number(limit))


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0

"""A run's reads and writes of its execution: the stream, the fenced append, the cancel flag.

A step boundary is one statement, committed on its own (synchronous commit, as every transaction): it
checks and extends the lease (or, with the run's last events, closes it), appends the events with their
outbox rows, wakes the relay and upserts the read-model row. Every write is joined with the lease row the
statement just locked, so a runner that lost its lease writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Boolean, DateTime, Float, Integer, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events import driver, jsontext
from sous_events.envelope import Envelope, EventPayload
from sous_events.store import (
    APPEND_PARAMETERS,
    ConcurrencyConflict,
    EventStore,
    append_parameters,
    append_sql,
    outbox_value_text,
)
from sous_executor.adapters.admission import COLUMNS as ADMISSION_COLUMNS
from sous_executor.adapters.admission import Admission
from sous_executor.adapters.admission import insert_sql as admission_sql
from sous_executor.adapters.cancel_flags import CancelFlags
from sous_executor.adapters.leases import LeaseLost, Leases
from sous_executor.adapters.repositories import execution_row
from sous_executor.adapters.tables import executions
from sous_executor.domain.execution import Execution
from sous_service.statement_pool import StatementPool

PRODUCER = "executor"
AGGREGATE = "Execution"


def _placeholder(table: Table, column: str, number: int) -> str:
    kind = table.c[column].type
    if isinstance(kind, JSONB):
        return f"${number}::text::jsonb"
    if isinstance(kind, DateTime):
        return f"${number}::timestamptz"
    if isinstance(kind, Boolean):
        return f"${number}::boolean"
    if isinstance(kind, Integer):
        return f"${number}::int"
    if isinstance(kind, Float):
        return f"${number}::float8"
    return f"${number}::text"


def _projection_cte(first: int, source: str = "FROM lease") -> tuple[str, tuple[str, ...]]:
    """The read-model upsert, its parameters numbered from `first`, in the order of `execution_row`; the row is
    written for each row of `source` (the lease the statement holds; "" writes it unconditionally)."""
    columns = tuple(execution_row(Execution()).keys())
    values = ", ".join(_placeholder(executions, c, first + i) for i, c in enumerate(columns))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "execution_id")
    cte = (
        f"projected AS (INSERT INTO executions ({', '.join(columns)}) SELECT {values} {source} "
        f"ON CONFLICT (execution_id) DO UPDATE SET {updates} WHERE executions.version <= EXCLUDED.version), "
    )
    return cte, columns


def _boundary_sql(*, finish: bool) -> tuple[str, tuple[str, ...]]:
    execution_id, owner = APPEND_PARAMETERS + 1, APPEND_PARAMETERS + 2
    if finish:
        lease = f"UPDATE execution_leases SET finished = true WHERE execution_id = ${execution_id} AND owner = ${owner}"
        first = owner + 1
    else:
        lease = (
            f"UPDATE execution_leases SET expires_at = now() + make_interval(secs => ${owner + 1}::float8), "
            f"heartbeat_at = now() WHERE execution_id = ${execution_id} AND owner = ${owner}"
        )
        first = owner + 2
    projection, columns = _projection_cte(first)
    ctes = f"lease AS ({lease} AND NOT finished RETURNING execution_id), {projection}"
    return append_sql(ctes=ctes, gate="lease, ", result=" FROM lease"), columns


RENEWING_SQL, PROJECTED_COLUMNS = _boundary_sql(finish=False)
FINISHING_SQL, _ = _boundary_sql(finish=True)


_JSONB_COLUMNS = frozenset(c for c in PROJECTED_COLUMNS if isinstance(executions.c[c].type, JSONB))


def _projection_parameters(execution: Execution) -> list[Any]:
    row = execution_row(execution)
    return [jsontext.dumps(row[c]) if c in _JSONB_COLUMNS else row[c] for c in PROJECTED_COLUMNS]


def _requesting_sql() -> str:
    """A start's writes: the lease when this instance claims the run, its admission (decided at the commit),
    events, outbox rows, read-model row."""
    first = APPEND_PARAMETERS + 1  # execution_id, workspace_id, owner, ttl, claimed
    lease = (
        "lease AS (INSERT INTO execution_leases (execution_id, workspace_id, owner, expires_at) "
        f"SELECT ${first}::text, ${first + 1}::text, ${first + 2}::text, "
        f"clock_timestamp() + make_interval(secs => ${first + 3}::float8) WHERE ${first + 4}::boolean), "
    )
    admission = admission_sql(first + 5)
    projection, _ = _projection_cte(first + 5 + len(ADMISSION_COLUMNS), source="")
    return append_sql(ctes=lease + admission + projection)


REQUESTING_SQL = _requesting_sql()


async def append_requested(
    session: AsyncSession,
    store: EventStore,
    execution: Execution,
    envelopes: Sequence[Envelope],
    *,
    leases: Leases,
    claimed: bool,
    admission: Admission,
    payloads: Sequence[EventPayload] | None = None,
    folded: int = 0,
    alone_on: StatementPool | None = None,
) -> None:
    """The first events of an execution (folded into `execution`), written by one statement of the session's
    transaction with their outbox rows and read-model row, and the lease when `claimed` by this instance.
    The start is admitted on `admission` at the commit, which fails with a refusal past a limit.

    `payloads`: the typed payloads the envelopes were made from, folded as they are (not read back from the
    envelopes: a request's payload carries the whole recipe and its agents). `folded`: how many of the first
    envelopes the caller has folded into `execution` already.

    No savepoint: a conflict (the execution exists already) fails the whole transaction, whose unit of work
    runs the start again. The lease expiry counts from the statement, as `Leases.claim_new`'s does.
    `alone_on`: the session's transaction writes nothing else, so the statement is sent on this pool to commit
    on its own (its admission is then decided at that commit).
    """
    outbox_rows = store.checked(envelopes, expected_version=0)
    if payloads is not None and len(payloads) != len(envelopes):
        raise ValueError("one payload per envelope")
    for index, envelope in enumerate(envelopes):
        if index >= folded:
            execution.apply(envelope, None if payloads is None else payloads[index])
    parameters = [*append_parameters(envelopes, outbox_rows), execution.execution_id, execution.workspace_id]
    parameters += [leases.owner, leases.ttl_s, claimed, *admission.parameters(execution.execution_id)]
    parameters += _projection_parameters(execution)
    try:
        if alone_on is not None:
            await alone_on.fetch(REQUESTING_SQL, *parameters)
        else:
            await driver.execute(session, REQUESTING_SQL, *parameters)
    except IntegrityError as exc:
        raise ConcurrencyConflict(AGGREGATE, execution.execution_id, 0) from exc


class AppendObserver(Protocol):
    """Told when an append to a stream starts, and when it ends: with its events' (version, type, JSON text)
    when it committed, with none when it did not."""

    def appending(self, aggregate_type: str, aggregate_id: str) -> None: ...

    def appended(self, aggregate_type: str, aggregate_id: str, rows: Sequence[tuple[int, str, str]]) -> None: ...


class ExecutionStream:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: EventStore,
        leases: Leases,
        statements: StatementPool,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.leases = leases
        # The boundary is a single statement: committed by the server on its own, no BEGIN/COMMIT round trips.
        self.statements = statements
        self.cancel_flags = CancelFlags(statements)
        # Told of every append this instance makes, and of its events' JSON text once it commits (the live
        # streams this instance serves).
        self.observer: AppendObserver | None = None

    async def load(self, execution_id: str) -> list[Envelope]:
        async with self.sessions() as session:
            return await self.store.load(session, AGGREGATE, execution_id)

    async def append(
        self, execution: Execution, envelopes: Sequence[Envelope], *, finish: bool, folded: int = 0
    ) -> None:
        """Append under the lease and fold into `execution`; `finish` closes the lease with the last event.

        The first `folded` envelopes are in `execution` already (staged by the run, not written yet).
        Raises ConcurrencyConflict when someone else appended first and LeaseLost when the lease is no longer
        this runner's (`execution` is then stale: reload it).
        """
        if not envelopes:
            raise ValueError("a step boundary appends at least one event")
        execution_id = execution.execution_id
        expected_version = execution.version - folded
        outbox_rows = self.store.checked(envelopes, expected_version=expected_version)
        for envelope in envelopes[folded:]:
            execution.apply(envelope)
        parameters = [*append_parameters(envelopes, outbox_rows), execution_id, self.leases.owner]
        if not finish:
            parameters.append(self.leases.ttl_s)
        parameters += _projection_parameters(execution)
        observer = self.observer
        if observer is not None:
            observer.appending(AGGREGATE, execution_id)
        rows: list[tuple[int, str, str]] = []
        try:
            owned = await self.statements.fetchrow(FINISHING_SQL if finish else RENEWING_SQL, *parameters) is not None
            if owned:
                rows = [
                    (e.aggregate_version, e.event_type, outbox_value_text(row["value"]))
                    for e, row in zip(envelopes, outbox_rows, strict=True)
                ]
        except IntegrityError as exc:
            raise ConcurrencyConflict(AGGREGATE, execution_id, expected_version) from exc
        finally:
            if observer is not None:
                observer.appended(AGGREGATE, execution_id, rows)
        if not owned:
            raise LeaseLost(execution_id)

    async def close(self, execution_id: str) -> None:
        """Close the lease of an execution there is nothing to run for."""
        async with self.sessions() as session, session.begin():
            await self.leases.mark_finished(session, execution_id)

    async def cancel_requested(self, execution_id: str) -> bool:
        return await self.cancel_flags.requested(execution_id)

"""The unit of work: one transaction around one use case, its events, their outbox rows and projections.

A handler receives a `UnitOfWork` and never opens, commits or retries a transaction itself:

- `UnitOfWorks.run(handler, command, caller)` opens a session and a transaction, runs the handler, commits;
  when another writer got there first (`ConcurrencyConflict` from the event store, or a serialization failure
  or deadlock in PostgreSQL) it rolls back and runs the handler again on fresh state, up to `attempts` times,
  then refuses with `Conflict("revision_conflict")`. Any other error rolls everything back.
- `UnitOfWorks.joined(session, caller)` gives a unit of work inside a transaction someone else owns (a
  consumer's inbox transaction): the consumer runner commits, and retries per its own policy.

`UnitOfWork.record` wraps a payload in its envelope (actor, correlation and causation from the caller),
appends it to its stream with optimistic concurrency, writes its outbox row and applies the service's
projection, all in that one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope, EventPayload
from sous_events.failures import sqlstate
from sous_events.registry import make_event
from sous_events.store import ConcurrencyConflict, EventStore
from sous_service.caller import Caller
from sous_service.domain_errors import Conflict

logger = logging.getLogger("sous.unit_of_work")

C = TypeVar("C")
R = TypeVar("R")

# Applies an event to the service's read models, in the transaction that records it.
Projector = Callable[[AsyncSession, Envelope], Awaitable[None]]
# One handler per command: it decides, records events through the unit of work, and returns a result.
CommandHandler = Callable[[C, "UnitOfWork"], Awaitable[R]]

# serialization_failure, deadlock_detected: PostgreSQL gave up one of two concurrent writers.
WRITE_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
DEFAULT_ATTEMPTS = 3


def is_write_conflict(exc: BaseException) -> bool:
    """True when the transaction lost a race with another writer and may simply be run again."""
    if isinstance(exc, ConcurrencyConflict):
        return True
    return isinstance(exc, DBAPIError) and sqlstate(exc) in WRITE_CONFLICT_SQLSTATES


class UnitOfWork:
    """What a handler works with: the session (in its transaction), the caller and the event store."""

    def __init__(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        producer: str,
        store: EventStore,
        projector: Projector | None = None,
    ) -> None:
        self.session = session
        self.caller = caller
        self.producer = producer
        self.store = store
        self.projector = projector
        self.recorded: list[Envelope] = []
        self._on_commit: list[Callable[[], object]] = []
        self._on_rollback: list[Callable[[], object]] = []

    def after_commit(self, action: Callable[[], object]) -> None:
        """Do `action` once this unit's transaction has committed (never, if it does not)."""
        self._on_commit.append(action)

    def after_rollback(self, action: Callable[[], object]) -> None:
        """Undo with `action` what the handler did outside the database, when the transaction does not commit."""
        self._on_rollback.append(action)

    def committed(self) -> None:
        """The transaction committed: run the `after_commit` actions, once."""
        actions, self._on_commit, self._on_rollback = self._on_commit, [], []
        for action in actions:
            action()

    def rolled_back(self) -> None:
        """The transaction did not commit (or may not have): run the `after_rollback` actions, once."""
        actions, self._on_commit, self._on_rollback = self._on_rollback, [], []
        for action in actions:
            action()

    def event(
        self,
        payload: EventPayload,
        *,
        aggregate_id: str,
        aggregate_version: int,
        workspace_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """The envelope of a payload, as this caller (the workspace defaults to the caller's). `occurred_at`
        (default: now) names a moment the payload itself already carries, so both say the same."""
        envelope = make_event(
            payload,
            producer=self.producer,
            workspace_id=workspace_id or self.caller.workspace_id,
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            actor=self.caller.actor,
            correlation_id=self.caller.correlation_id,
            causation_id=self.caller.causation_id,
        )
        return envelope if occurred_at is None else envelope.model_copy(update={"occurred_at": occurred_at})

    async def record(
        self,
        payload: EventPayload,
        *,
        aggregate_id: str,
        expected_version: int,
        workspace_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """Append the event as version `expected_version + 1` of its stream, with its outbox row, and project
        it. Raises ConcurrencyConflict when the stream moved on (the runner retries the whole handler)."""
        envelope = self.event(
            payload,
            aggregate_id=aggregate_id,
            aggregate_version=expected_version + 1,
            workspace_id=workspace_id,
            occurred_at=occurred_at,
        )
        await self.store.append(self.session, [envelope], expected_version=expected_version)
        if self.projector is not None:
            await self.projector(self.session, envelope)
        self.recorded.append(envelope)
        return envelope

    async def record_all(
        self,
        payloads: Sequence[EventPayload],
        *,
        aggregate_id: str,
        expected_version: int,
        workspace_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> list[Envelope]:
        """Append several events to one stream at once (versions `expected_version + 1, + 2, ...`)."""
        envelopes = [
            self.event(
                payload,
                aggregate_id=aggregate_id,
                aggregate_version=expected_version + offset,
                workspace_id=workspace_id,
                occurred_at=occurred_at,
            )
            for offset, payload in enumerate(payloads, start=1)
        ]
        await self.store.append(self.session, envelopes, expected_version=expected_version)
        if self.projector is not None:
            for envelope in envelopes:
                await self.projector(self.session, envelope)
        self.recorded.extend(envelopes)
        return envelopes

    async def publish(
        self, payload: EventPayload, *, aggregate_id: str, aggregate_version: int, workspace_id: str | None = None
    ) -> Envelope:
        """Promise to publish an event that is not appended to a stream here (the outbox row only)."""
        envelope = self.event(
            payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version, workspace_id=workspace_id
        )
        await self.store.enqueue(self.session, [envelope])
        return envelope

    async def load(self, aggregate_type: str, aggregate_id: str) -> list[Envelope]:
        """The stream of one aggregate, oldest first (to rebuild it and decide)."""
        return await self.store.load(self.session, aggregate_type, aggregate_id)


class UnitOfWorks:
    """Makes the units of work of one service: its sessions, event store, producer name and projection."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        producer: str,
        store: EventStore | None = None,
        projector: Projector | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        self.sessions = sessions
        self.producer = producer
        self.store = store or EventStore()
        self.projector = projector
        self.attempts = max(1, attempts)

    def joined(self, session: AsyncSession, caller: Caller) -> UnitOfWork:
        """A unit of work inside the caller's own transaction (a consumer's inbox transaction)."""
        return UnitOfWork(session, caller, producer=self.producer, store=self.store, projector=self.projector)

    async def run(
        self,
        handler: CommandHandler[C, R],
        command: C,
        caller: Caller,
        *,
        attempts: int | None = None,
        conflict: Callable[[BaseException], Exception] | None = None,
    ) -> R:
        """Run the handler in a transaction of its own, again on a write conflict; commit or roll back.

        After the last attempt the race is refused with `conflict(error)` when given (a service's own wording),
        else `Conflict("revision_conflict")`."""
        limit = max(1, attempts or self.attempts)
        for attempt in range(1, limit + 1):
            uow: UnitOfWork | None = None
            try:
                async with self.sessions() as session, session.begin():
                    uow = self.joined(session, caller)
                    result = await handler(command, uow)
            except BaseException as exc:
                if uow is not None:
                    uow.rolled_back()
                if not isinstance(exc, ConcurrencyConflict | DBAPIError) or not is_write_conflict(exc):
                    raise
                if attempt == limit:
                    raise (conflict or _conflict)(exc) from exc
                logger.info("%s: write conflict on attempt %d, running it again", type(command).__name__, attempt)
            else:
                uow.committed()
                return result
        raise AssertionError("unreachable: the last attempt returns or raises")


def _conflict(exc: BaseException) -> Conflict:
    what = f"{exc.aggregate_type} '{exc.aggregate_id}'" if isinstance(exc, ConcurrencyConflict) else "the data"
    return Conflict(f"{what} was changed concurrently; reload and retry", code="revision_conflict")

"""The event store: append with optimistic concurrency, load a stream, replay everything.

Appending writes the events, and their outbox rows, in the caller's transaction: the state change, the
record of it and the promise to publish it commit together or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events import driver, jsontext
from sous_events.codec import encode, kafka_headers
from sous_events.envelope import Envelope
from sous_events.registry import topic_for
from sous_events.tables import event_store

OUTBOX_CHANNEL = "sous_outbox"
# Below the broker's default 1 MiB message limit with room for the record's framing: an event the broker
# would refuse is refused here, where the writer can still react, instead of wedging the outbox.
DEFAULT_MAX_EVENT_BYTES = 900 * 1024


class EventTooLarge(ValueError):
    """The encoded event exceeds the configured limit; it is neither recorded nor published."""

    def __init__(self, event_type: str, aggregate_id: str, size: int, limit: int) -> None:
        super().__init__(
            f"{event_type} for {aggregate_id} is {size} bytes encoded, over the {limit}-byte event limit; "
            "keep large data out of events (store it and reference it)"
        )
        self.event_type = event_type
        self.aggregate_id = aggregate_id
        self.size = size
        self.limit = limit


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream first: the expected version is stale."""

    def __init__(self, aggregate_type: str, aggregate_id: str, expected_version: int) -> None:
        super().__init__(f"{aggregate_type} {aggregate_id}: expected version {expected_version} is stale")
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.expected_version = expected_version


def outbox_row(envelope: Envelope) -> dict[str, object]:
    return {
        "event_id": envelope.event_id,
        "topic": topic_for(envelope.event_type),
        "key": envelope.aggregate_id,
        "value": encode(envelope),
        "headers": [[k, v.decode()] for k, v in kafka_headers(envelope)],
    }


def encoded_size(row: dict[str, object]) -> int:
    """What the record weighs on the wire, framing aside: value, key and headers."""
    value = row["value"]
    assert isinstance(value, bytes)
    headers = row["headers"]
    assert isinstance(headers, list)
    return len(value) + len(str(row["key"]).encode()) + sum(len(k) + len(v.encode()) for k, v in headers)


# One statement writes a batch: its events, their outbox rows and the relay's wake-up. The arrays keep the
# statement's text the same whatever the batch size, so each connection prepares it once. `{gate}` lets a
# caller make the writes conditional on a row of its own CTE (the executor's lease), `{ctes}` adds them.
EVENT_ARRAYS = (
    "unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::int[], "
    "$8::timestamptz[], $9::text[]) AS e(event_id, event_type, schema_version, workspace_id, aggregate_type, "
    "aggregate_id, aggregate_version, occurred_at, envelope)"
)
OUTBOX_ARRAYS = (
    "unnest($1::text[], $10::text[], $11::text[], $12::bytea[], $13::text[]) AS o(event_id, topic, key, value, headers)"
)
APPEND_PARAMETERS = 13
APPEND_SQL = f"""
WITH {{ctes}}appended AS (
    INSERT INTO event_store (event_id, event_type, schema_version, workspace_id, aggregate_type, aggregate_id,
                             aggregate_version, occurred_at, envelope)
    SELECT e.event_id, e.event_type, e.schema_version, e.workspace_id, e.aggregate_type, e.aggregate_id,
           e.aggregate_version, e.occurred_at, e.envelope::jsonb
    FROM {{gate}}{EVENT_ARRAYS}
), published AS (
    INSERT INTO outbox (event_id, topic, key, value, headers)
    SELECT o.event_id, o.topic, o.key, o.value, o.headers::jsonb FROM {{gate}}{OUTBOX_ARRAYS}
)
SELECT pg_notify('{OUTBOX_CHANNEL}', ''){{result}}
"""
ENQUEUE_SQL = f"""
WITH published AS (
    INSERT INTO outbox (event_id, topic, key, value, headers)
    SELECT o.event_id, o.topic, o.key, o.value, o.headers::jsonb
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[]) AS o(event_id, topic, key, value, headers)
)
SELECT pg_notify('{OUTBOX_CHANNEL}', '')
"""


def append_sql(*, ctes: str = "", gate: str = "", result: str = "") -> str:
    """The append statement; `ctes` (ending with a comma) run beside it, `gate` (e.g. "lease, ") is a FROM item
    every written row is joined with, `result` adds to the select list (e.g. " FROM lease")."""
    return APPEND_SQL.format(ctes=ctes, gate=gate, result=result)


def append_parameters(events: Sequence[Envelope], outbox_rows: Sequence[dict[str, object]]) -> list[object]:
    """The 13 positional parameters of the append statement, column by column."""
    return [
        [e.event_id for e in events],
        [e.event_type for e in events],
        [e.schema_version for e in events],
        [e.workspace_id for e in events],
        [e.aggregate_type for e in events],
        [e.aggregate_id for e in events],
        [e.aggregate_version for e in events],
        [e.occurred_at for e in events],
        # The outbox value is the envelope's JSON already: encoded once, stored twice.
        [outbox_value_text(row["value"]) for row in outbox_rows],
        *_outbox_columns(outbox_rows),
    ]


def outbox_value_text(value: object) -> str:
    """An outbox row's value (the envelope's JSON, as the event store also holds it) as text."""
    assert isinstance(value, bytes)
    return value.decode()


def _outbox_columns(rows: Sequence[dict[str, object]]) -> list[list[object]]:
    return [
        [row["topic"] for row in rows],
        [row["key"] for row in rows],
        [row["value"] for row in rows],
        [jsontext.dumps(row["headers"]) for row in rows],
    ]


class EventStore:
    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes

    def _outbox_rows(self, events: Sequence[Envelope]) -> list[dict[str, object]]:
        rows = [outbox_row(e) for e in events]
        for event, row in zip(events, rows, strict=True):
            size = encoded_size(row)
            if size > self.max_event_bytes:
                raise EventTooLarge(event.event_type, event.aggregate_id, size, self.max_event_bytes)
        return rows

    def checked(self, events: Sequence[Envelope], *, expected_version: int) -> list[dict[str, object]]:
        """Validate a batch for one stream (versions follow `expected_version`, sizes within the limit) and
        return its outbox rows; raises before anything is written, so a refused batch leaves no trace."""
        first = events[0]
        for offset, event in enumerate(events, start=1):
            if (event.aggregate_type, event.aggregate_id) != (first.aggregate_type, first.aggregate_id):
                raise ValueError("one append covers one stream")
            if event.aggregate_version != expected_version + offset:
                raise ValueError(f"event version {event.aggregate_version} does not follow expected {expected_version}")
        return self._outbox_rows(events)

    async def append(self, session: AsyncSession, events: Sequence[Envelope], *, expected_version: int) -> None:
        """Append events of one stream whose current version must be `expected_version`.

        The events must carry versions expected_version+1, +2, ...; the unique stream-version constraint
        turns a concurrent append into ConcurrencyConflict instead of a silent overwrite. Events, outbox rows
        and the relay's wake-up are one statement; the savepoint around it leaves the caller's transaction
        usable after a conflict.
        """
        await self.append_streams(session, [(events, expected_version)])

    async def append_streams(self, session: AsyncSession, streams: Sequence[tuple[Sequence[Envelope], int]]) -> None:
        """Append to several streams at once: (events, expected version) per stream, all or nothing.

        The same checks as `append` for each stream, and still one statement: a writer with many streams
        to extend (a batch of commands, an import) pays one round trip, not one per stream. A conflict on
        any stream writes nothing and raises ConcurrencyConflict naming that stream.
        """
        streams = [(events, expected) for events, expected in streams if events]
        if not streams:
            return
        events: list[Envelope] = []
        outbox_rows: list[dict[str, object]] = []
        for stream_events, expected_version in streams:
            outbox_rows += self.checked(stream_events, expected_version=expected_version)
            events += stream_events
        try:
            async with session.begin_nested():
                await driver.execute(session, append_sql(), *append_parameters(events, outbox_rows))
        except IntegrityError as exc:
            stream_events, expected_version = await self._conflicting(session, streams)
            first = stream_events[0]
            raise ConcurrencyConflict(first.aggregate_type, first.aggregate_id, expected_version) from exc

    async def _conflicting(
        self, session: AsyncSession, streams: list[tuple[Sequence[Envelope], int]]
    ) -> tuple[Sequence[Envelope], int]:
        """Which stream moved on: the first whose stored version is past the one its append expected (the
        first stream when none is, e.g. a reused event id)."""
        if len(streams) > 1:
            keys = [(events[0].aggregate_type, events[0].aggregate_id) for events, _ in streams]
            rows = await session.execute(
                select(
                    event_store.c.aggregate_type, event_store.c.aggregate_id, func.max(event_store.c.aggregate_version)
                )
                .where(tuple_(event_store.c.aggregate_type, event_store.c.aggregate_id).in_(keys))
                .group_by(event_store.c.aggregate_type, event_store.c.aggregate_id)
            )
            stored = {(kind, aggregate): int(version) for kind, aggregate, version in rows}
            for (stream_events, expected_version), key in zip(streams, keys, strict=True):
                if stored.get(key, 0) > expected_version:
                    return stream_events, expected_version
        return streams[0]

    async def enqueue(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Promise to publish events (already recorded, or not event-sourced) via the outbox."""
        if events:
            rows = self._outbox_rows(events)
            await driver.execute(session, ENQUEUE_SQL, [r["event_id"] for r in rows], *_outbox_columns(rows))

    async def load(self, session: AsyncSession, aggregate_type: str, aggregate_id: str) -> list[Envelope]:
        result = await session.execute(
            select(event_store.c.envelope)
            .where(event_store.c.aggregate_type == aggregate_type, event_store.c.aggregate_id == aggregate_id)
            .order_by(event_store.c.aggregate_version)
        )
        return [Envelope.model_validate(row) for row in result.scalars()]

    async def current_version(self, session: AsyncSession, aggregate_type: str, aggregate_id: str) -> int:
        result = await session.execute(
            select(func.coalesce(func.max(event_store.c.aggregate_version), 0)).where(
                event_store.c.aggregate_type == aggregate_type, event_store.c.aggregate_id == aggregate_id
            )
        )
        return int(result.scalar_one())

    async def replay(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        aggregate_types: Sequence[str] | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[Envelope]:
        """Every event in commit order, read in batches so a large store does not sit in memory."""
        after = 0
        while True:
            query = select(event_store.c.position, event_store.c.envelope).where(event_store.c.position > after)
            if aggregate_types:
                query = query.where(event_store.c.aggregate_type.in_(aggregate_types))
            async with sessions() as session:
                rows = (await session.execute(query.order_by(event_store.c.position).limit(batch_size))).all()
            if not rows:
                return
            for position, envelope in rows:
                after = position
                yield Envelope.model_validate(envelope)

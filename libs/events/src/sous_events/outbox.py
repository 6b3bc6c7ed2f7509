"""The outbox relay: publishes committed outbox rows to Kafka, in order, exactly as recorded.

One relay per service is the leader (a Postgres advisory lock held on a dedicated connection); others
wait. The leader wakes on NOTIFY from the appending transaction (a slow poll is only a safety net), sends
each batch keyed by aggregate id all at once and awaits the acknowledgements together, with a bounded
timeout (sends can hang while the broker is down), and backs off while the broker is unavailable. Rows are
marked sent (or, keeping no delivery log, deleted) only after the broker acknowledged them, in the same
statement that fetches the next batch.
A row the broker refuses for good is parked (`parked_at`, `last_error`) instead of retried forever; only
the later rows of its key wait behind it, until an operator re-sends or discards it (sous_events.parking).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy.engine import make_url

from sous_events.failures import describe
from sous_events.kafka import KafkaConfig, make_producer
from sous_events.migration_ops import OUTBOX_PARKING_DDL
from sous_events.relay_send import SendOutcome, send_rows
from sous_events.store import OUTBOX_CHANNEL

logger = logging.getLogger("sous.outbox")

# The oldest unsent rows that are not parked and do not queue behind a parked row of their key: a row the
# broker refuses holds back only its own aggregate, every other aggregate keeps flowing.
# $2 are the rows the broker acknowledged in the previous pass: marked sent by the same round trip (the
# statement's snapshot still sees them unsent, hence the hashed NOT IN over what it marked). $3 are the rows
# being sent while this fetch runs ahead: not theirs to fetch again.
_NEXT_ROWS_AFTER = """
WITH marked AS ({mark})
SELECT o.id, o.topic, o.key, o.value, o.headers FROM outbox o
WHERE o.sent_at IS NULL AND o.parked_at IS NULL
  AND o.id NOT IN (SELECT id FROM marked UNION ALL SELECT unnest($3::bigint[]))
  AND NOT EXISTS (
    SELECT 1 FROM outbox p
    WHERE p.parked_at IS NOT NULL AND p.sent_at IS NULL AND p.key = o.key AND p.id < o.id)
ORDER BY o.id LIMIT $1
"""
# What becomes of an acknowledged row: kept, marked sent, as a delivery log the leader trims later; or
# deleted at once. A deleted row is one dead tuple, where marking writes a whole new row version (with its
# value and a new primary-key entry: sent_at is in ix_outbox_unsent's predicate, so the update is never HOT)
# and the trim deletes it later all the same.
_MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY({ids}::bigint[]) RETURNING id"
_DELETE_SENT = "DELETE FROM outbox WHERE id = ANY({ids}::bigint[]) RETURNING id"
_NEXT_ROWS = _NEXT_ROWS_AFTER.format(mark=_MARK_SENT.format(ids="$2"))
_NEXT_ROWS_DELETING = _NEXT_ROWS_AFTER.format(mark=_DELETE_SENT.format(ids="$2"))
# The relay's session plans its fetch as a walk of ix_outbox_unsent in id order that stops at the limit.
# Statistics say the unsent rows are few (they usually are), so the planner would otherwise pick a bitmap
# scan of every unsent row and a sort: each pass costs the whole backlog exactly when there is a backlog.
# Its commits (rows marked sent or deleted, rows parked) do not wait for the WAL flush: a server crash can
# only forget the last of them, whose rows are then sent again and dropped as copies by the consumers, as
# when a relay dies between a send and its mark. The appends waiting on that flush no longer queue behind it.
RELAY_SESSION_SETTINGS = {"enable_bitmapscan": "off", "synchronous_commit": "off"}


def advisory_lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"sous-outbox:{name}".encode()).digest()[:8], "big", signed=True)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxRelay:
    def __init__(
        self,
        *,
        name: str,
        database_url: str,
        kafka: KafkaConfig,
        batch_size: int = 2000,
        fallback_poll_s: float = 30.0,
        max_backoff_s: float = 5.0,
        keep_sent_s: float = 3600.0,
        purge_every_s: float = 300.0,
        connect_timeout_s: float = 10.0,
        command_timeout_s: float = 30.0,
        keepalive_idle_s: int = 10,
        on_park: Callable[[int], None] | None = None,
        mark_delay_s: float = 0.1,
        vacuum_every_rows: int = 2000,
        linger_s: float = 0.0,
    ) -> None:
        self.name = name
        self.dsn = asyncpg_dsn(database_url)
        self.kafka = kafka
        self.batch_size = batch_size
        self.fallback_poll_s = fallback_poll_s
        self.max_backoff_s = max_backoff_s
        # Sent rows are only a delivery log (the event store keeps the record); the leader trims them.
        # 0 keeps no log: a row is deleted as soon as the broker acknowledged it.
        self.keep_sent_s = keep_sent_s
        self._next_rows = _NEXT_ROWS if keep_sent_s > 0 else _NEXT_ROWS_DELETING
        self._mark_sent = (_MARK_SENT if keep_sent_s > 0 else _DELETE_SENT).format(ids="$1")
        self.purge_every_s = purge_every_s
        self._last_purge = 0.0
        # A deleted row leaves a dead entry in ix_outbox_unsent, and each fetch walks that index from its
        # oldest entry: until the table is vacuumed, every fetch steps over every row deleted since.
        # Autovacuum looks at a database once a naptime (a minute by default), by which time a busy service
        # has deleted tens of thousands of rows and a fetch costs several times what it did, so the leader
        # vacuums the table itself every `vacuum_every_rows` rows deleted. (Rows kept as a delivery log are
        # live: the periodic trim and autovacuum look after that table.)
        self.vacuum_every_rows = vacuum_every_rows if keep_sent_s <= 0 else 0
        self.vacuums = 0
        self._vacuumed_at = 0
        # A connection that silently died (a dropped route, a frozen server) must fail a query rather than
        # hang the leader: every command is bounded, and keepalives let the server drop the session (and
        # its advisory lock) so a reconnecting leader, or another instance, can take over.
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.keepalive_idle_s = keepalive_idle_s
        self.on_park = on_park
        # How long acknowledged rows may wait to be marked sent by a fetch that brings new rows as well.
        self.mark_delay_s = mark_delay_s
        # How long a pass waits for more commits before it fetches, unless the pass before it was full (a
        # backlog goes out back to back): the commits of those milliseconds go out in one fetch, one produce
        # request and one mark, and the consumers fetch them together.
        self.linger_s = linger_s
        self.lingered = 0
        self.lingering = False
        self._backlogged = False
        # The last pass fetched every committed row (any later commit sets `_wake`), and fetched none ahead.
        self.caught_up = False
        self.published = 0
        self.passes = 0  # passes that sent rows
        self.parked = 0
        self.is_leader = False
        self.idle = False  # leading, everything committed sent, waiting for the next commit
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        # Acknowledged by the broker, not yet marked sent (the next fetch marks them; a crash resends them).
        self._acked: list[int] = []
        # The next pass's rows, fetched while this pass's were being acknowledged.
        self._ahead: list[Any] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.name}")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close_producer()

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._lead()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("outbox relay %s: %s; retrying in %.1fs", self.name, describe(exc), backoff)
                await self._close_producer()
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    async def _lead(self) -> None:
        conn = await self._connect()
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", advisory_lock_key(self.name)):
                self.is_leader = False
                await self._sleep(1.0)
                if self._stopping.is_set():
                    return
            self.is_leader = True
            await _ensure_parking_columns(conn)
            await conn.add_listener(OUTBOX_CHANNEL, self._on_notify)
            while not self._stopping.is_set():
                await self._purge_if_due(conn)
                await self._vacuum_if_due(conn)
                await self._linger()
                # Cleared before the query: a NOTIFY of a commit the query does not see wakes the next wait.
                self._wake.clear()
                fetched = await self._publish_batch(conn)
                self._backlogged = fetched >= self.batch_size
                if fetched == 0:
                    self.idle = True
                    try:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), self.fallback_poll_s)
                    finally:
                        self.idle = False
                elif self.caught_up and self._acked and not self._wake.is_set():
                    # The rows just sent are marked sent by the next fetch. A commit due soon (a busy writer)
                    # makes that fetch bring its rows too: one statement, where marking at once costs two.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.mark_delay_s)
        finally:
            self.is_leader = False
            self._ahead = []  # a later lead fetches afresh: another leader may have sent these meanwhile
            with contextlib.suppress(Exception):
                await self._mark_acked(conn)
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _linger(self) -> None:
        if self.linger_s > 0 and not self._backlogged:
            self.lingered += 1
            self.lingering = True
            try:
                await self._sleep(self.linger_s)
            finally:
                self.lingering = False

    async def _connect(self) -> asyncpg.Connection:
        idle = self.keepalive_idle_s
        return await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout_s,
            command_timeout=self.command_timeout_s,
            server_settings={
                "application_name": f"sous-outbox-{self.name}"[:63],
                "tcp_keepalives_idle": str(idle),
                "tcp_keepalives_interval": str(max(1, idle // 2)),
                "tcp_keepalives_count": "3",
                **RELAY_SESSION_SETTINGS,
            },
        )

    async def _purge_if_due(self, conn: asyncpg.Connection) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_purge < self.purge_every_s:
            return
        self._last_purge = now
        await conn.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)", float(self.keep_sent_s)
        )

    async def _vacuum_if_due(self, conn: asyncpg.Connection) -> None:
        if self.vacuum_every_rows <= 0 or self.published - self._vacuumed_at < self.vacuum_every_rows:
            return
        self._vacuumed_at = self.published
        # SKIP_LOCKED: a vacuum already running (autovacuum's) is left to finish; a role that does not own the
        # table gets a warning from the server, not an error.
        await conn.execute("VACUUM (SKIP_LOCKED) outbox")
        self.vacuums += 1

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self.kafka)
            try:
                await asyncio.wait_for(producer.start(), self.kafka.send_timeout_s)
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    async def _publish_batch(self, conn: asyncpg.Connection) -> int:
        """Send the rows fetched ahead (or fetch them now), and while the broker acknowledges them, mark the
        previous pass's rows sent and fetch the next ones. Returns the rows sent.

        Only the fetch overlaps the send: a pass's rows go to the broker once the previous pass's are all
        acknowledged, so per-key order holds even when a send fails.
        """
        rows, self._ahead = self._ahead, []
        fresh = not rows
        self.caught_up = False
        if fresh:
            acked, self._acked = self._acked, []
            rows = await conn.fetch(self._next_rows, self.batch_size, acked, [])
            self.published += len(acked)
        if not rows:
            return 0
        self.passes += 1
        producer = await self._ensure_producer()
        sending = asyncio.wait_for(send_rows(producer, rows), self.kafka.send_timeout_s)
        if fresh and len(rows) < self.batch_size and not self._wake.is_set():
            # This pass's fetch took every row committed before it and no NOTIFY came since: a fetch ahead
            # would find nothing. The next pass's fetch marks the previous rows and this pass's together.
            self.caught_up = True
            acked = []
            results: tuple[Any, Any] = (
                (await asyncio.gather(sending, return_exceptions=True))[0],
                [],
            )
        else:
            acked, self._acked = self._acked, []
            fetching = conn.fetch(self._next_rows, self.batch_size, acked, [row["id"] for row in rows])
            results = await asyncio.gather(sending, fetching, return_exceptions=True)
        outcome: SendOutcome | BaseException = results[0]
        ahead: list[Any] | BaseException = results[1]
        if isinstance(ahead, BaseException):
            self._acked = acked + self._acked  # not marked: the next fetch (or the leader's exit) marks them
        else:
            self.published += len(acked)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome.parked:
            await self._park(conn, outcome.parked)
        self._acked += outcome.sent
        if outcome.error is not None:
            # Broker trouble: what was acknowledged is recorded now, the rest is sent again after a backoff.
            await self._mark_acked(conn)
            raise outcome.error
        if isinstance(ahead, BaseException):
            raise ahead
        # Rows held behind a row parked in this pass must not go: then the next pass fetches afresh.
        self._ahead = [] if outcome.parked else list(ahead)
        return len(rows)

    async def _mark_acked(self, conn: asyncpg.Connection) -> None:
        if self._acked:
            await conn.execute(self._mark_sent, self._acked)
            self.published += len(self._acked)
            self._acked = []

    async def _park(self, conn: asyncpg.Connection, parked: list[tuple[int, str]]) -> None:
        await conn.executemany(
            "UPDATE outbox SET parked_at = now(), last_error = $2, attempts = attempts + 1 WHERE id = $1", parked
        )
        self.parked += len(parked)
        for row_id, error in parked:
            logger.error(
                "outbox relay %s: row %d parked, the broker refuses it (%s); later events of its key wait. "
                "Operators: `sous dlq outbox` lists parked rows, `sous dlq outbox resend` re-sends them",
                self.name,
                row_id,
                error,
            )
        if self.on_park is not None:
            with contextlib.suppress(Exception):
                self.on_park(len(parked))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


async def _ensure_parking_columns(conn: asyncpg.Connection) -> None:
    # A database migrated before outbox parking existed gets its columns here, so no service's relay
    # depends on every service shipping a migration for them (the statements are idempotent).
    present = await conn.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'outbox' AND column_name IN ('parked_at', 'last_error', 'attempts')"
    )
    if present < 3:
        for statement in OUTBOX_PARKING_DDL:
            await conn.execute(statement)
        logger.warning("outbox relay: added the parking columns to an older outbox table")


async def pending_count(database_url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def purge_sent(database_url: str, older_than_s: float = 3600) -> int:
    """Delete rows that were published long ago; the event store keeps the record."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        status = await conn.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)", float(older_than_s)
        )
        return int(status.split()[-1])
    finally:
        await conn.close()

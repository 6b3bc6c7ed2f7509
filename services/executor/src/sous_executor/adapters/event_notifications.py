"""One LISTEN connection per executor process, fanned out to every live-event stream it serves.

A statement trigger on `event_store` (migrations 0009, 0011) sends `NOTIFY sous_stream_versions,
'<type>:<id>:<version>'` when an append commits, `<version>` being the stream's last version after it. Streams
wait on their subscription here instead of polling the database: an idle stream costs no query at all, and a
stream reads only when its execution has something it has not been given.

What this process appends itself (the runs it drives) is handed to its subscribers as it commits, with each
event's JSON text (`appending`, then `appended`): a stream sends those without reading them back, and the
NOTIFY of that same append, announcing a version the stream has been given, costs it nothing (one arriving
while such an append is in flight waits for it). While the listener is down
(database restart), waiters fall back to a slow poll, and every stream is woken on reconnection so nothing
appended in between is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg

from sous_events.outbox import asyncpg_dsn

logger = logging.getLogger("sous.executor.notifications")

CHANNEL = "sous_stream_versions"
# One event of a stream as a live stream sends it: (version, event type, the envelope's JSON text).
Row = tuple[int, str, str]


class Subscription:
    """What one live stream is told about its execution; `woken` is set whenever it may have grown."""

    def __init__(self) -> None:
        self.woken = asyncio.Event()
        self.announced = 0  # the highest version a NOTIFY announced
        self.unknown = True  # something may have been appended that no version says: read the store
        self._pushed: list[Row] = []
        # Appends by this process in flight: their NOTIFY can arrive before they are handed over, so a wake-up
        # waits for them (a stream would otherwise read back what it is about to be given).
        self._appending = 0

    def announce(self, version: int | None) -> None:
        if version is None:
            self.unknown = True
        else:
            self.announced = max(self.announced, version)
        if not self._appending:
            self.woken.set()

    def hold(self) -> None:
        self._appending += 1

    def push(self, rows: Sequence[Row]) -> None:
        """An append of this process ended: its events, or none when it did not commit."""
        self._appending = max(0, self._appending - 1)
        self._pushed.extend(rows)
        self.woken.set()

    def take(self, after: int) -> tuple[list[Row], bool]:
        """The events handed over that follow version `after` without a gap, and whether the store must be
        read as well (an announced or handed-over event is not among them, or nothing is known)."""
        pushed, self._pushed = sorted(self._pushed), []
        rows: list[Row] = []
        gap = False
        for row in pushed:
            if row[0] <= after + len(rows):
                continue  # sent already
            if row[0] != after + len(rows) + 1:
                gap = True
                break
            rows.append(row)
        read = self.unknown or gap or self.announced > after + len(rows)
        self.unknown = False
        return rows, read


class EventNotifications:
    def __init__(self, database_url: str, *, fallback_poll_s: float = 5.0) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self.fallback_poll_s = fallback_poll_s
        self._waiters: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    # -- streams ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def subscribe(self, aggregate_type: str, aggregate_id: str) -> Iterator[Subscription]:
        """A subscription to the stream's growth; the subscriber clears `woken` before it takes and reads."""
        key = f"{aggregate_type}:{aggregate_id}"
        subscription = Subscription()
        self._waiters.setdefault(key, set()).add(subscription)
        try:
            yield subscription
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(subscription)
                if not waiters:
                    del self._waiters[key]

    async def wait(self, subscription: Subscription, timeout_s: float) -> bool:
        """Wait for a wake-up, at most `timeout_s` (shorter while not listening). True when woken."""
        limit = timeout_s if self.listening else min(timeout_s, self.fallback_poll_s)
        try:
            await asyncio.wait_for(subscription.woken.wait(), limit)
        except TimeoutError:
            if self.listening:
                return False
            subscription.unknown = True  # without a listener, a timeout must count as "look again"
        return True

    def appending(self, aggregate_type: str, aggregate_id: str) -> None:
        """This process starts an append to the stream (`appended` follows, whatever its outcome)."""
        for subscription in self._waiters.get(f"{aggregate_type}:{aggregate_id}", ()):
            subscription.hold()

    def appended(self, aggregate_type: str, aggregate_id: str, rows: Sequence[Row]) -> None:
        """This process's append to the stream ended: the events it committed (none if it did not), handed to
        the stream's subscribers here."""
        for subscription in self._waiters.get(f"{aggregate_type}:{aggregate_id}", ()):
            subscription.push(rows)

    @property
    def subscriptions(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    # -- the listener ----------------------------------------------------------------------------
    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        key, version = parse_payload(payload)
        for subscription in self._waiters.get(key, ()):
            subscription.announce(version)

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for subscription in waiters:
                subscription.announce(None)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-notifications")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn)
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening = True
                backoff = 0.2
                self._wake_all()
                await self._hold(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("event notifications: %s; retrying in %.1fs", exc, backoff)
            finally:
                self.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            self._wake_all()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _hold(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is gone; a cheap query now and then notices a silent loss."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), 10.0)
            if not lost.is_set():
                await conn.fetchval("SELECT 1", timeout=5)


def parse_payload(payload: str) -> tuple[str, int | None]:
    """('<type>:<id>', version) of a NOTIFY payload; no version from a payload without one (an older trigger)."""
    key, _, version = payload.rpartition(":")
    if key.count(":") == 1 and version.isdigit():
        return key, int(version)
    return payload, None

"""One LISTEN connection per executor process, fanned out to every live-event stream it serves.

A trigger on `event_store` (migration 0005) sends `NOTIFY sous_events_appended, '<type>:<id>'` when an
append commits. Streams wait on their key here instead of polling the database: an idle stream costs no
query at all, and a stream reads only when its execution has something new. While the listener is
down (database restart), waiters fall back to a slow poll, and every stream is woken on reconnection
so nothing appended in between is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import asyncpg

from sous_events.outbox import asyncpg_dsn

logger = logging.getLogger("sous.executor.notifications")

CHANNEL = "sous_events_appended"


class EventNotifications:
    def __init__(self, database_url: str, *, fallback_poll_s: float = 5.0) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self.fallback_poll_s = fallback_poll_s
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    # -- streams ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def subscribe(self, aggregate_type: str, aggregate_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the stream may have grown; the subscriber clears it before reading."""
        key = f"{aggregate_type}:{aggregate_id}"
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait for a wake-up, at most `timeout_s` (shorter while not listening). True when woken."""
        limit = timeout_s if self.listening else min(timeout_s, self.fallback_poll_s)
        try:
            await asyncio.wait_for(event.wait(), limit)
        except TimeoutError:
            return not self.listening  # without a listener, a timeout must count as "look again"
        return True

    @property
    def subscriptions(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    # -- the listener ----------------------------------------------------------------------------
    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for event in self._waiters.get(payload, ()):
            event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

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

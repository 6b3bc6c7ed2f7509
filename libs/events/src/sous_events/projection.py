"""Rebuilding read models by replaying the event store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope
from sous_events.store import EventStore

Apply = Callable[[AsyncSession, Envelope], Awaitable[None]]
Reset = Callable[[AsyncSession], Awaitable[None]]


async def rebuild_projection(
    sessions: async_sessionmaker[AsyncSession],
    *,
    reset: Reset,
    apply: Apply,
    aggregate_types: Sequence[str] | None = None,
) -> int:
    """Empty the read model and re-apply every stored event in commit order, in one transaction."""
    store = EventStore()
    count = 0
    async with sessions() as session, session.begin():
        await reset(session)
        async for envelope in store.replay(sessions, aggregate_types=aggregate_types):
            await apply(session, envelope)
            count += 1
    return count

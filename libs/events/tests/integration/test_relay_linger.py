"""The relay's linger: commits that land while it waits go out in one pass; a backlog goes out back to back."""

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.outbox import OutboxRelay, pending_count
from sous_events.store import EventStore
from sous_local.pipeline import pipeline_event

from .conftest import eventually

pytestmark = pytest.mark.integration


async def _append(sessions: async_sessionmaker[AsyncSession], workspace: str, aggregate: str, versions: int) -> None:
    async with sessions() as s, s.begin():
        events = [pipeline_event(workspace, aggregate, v) for v in range(1, versions + 1)]
        await EventStore().append(s, events, expected_version=0)


async def _waiting_for_commits(fresh_database: str, kafka, linger_s: float) -> OutboxRelay:  # type: ignore[no-untyped-def]
    relay = OutboxRelay(
        name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka, linger_s=linger_s
    )
    relay.start()

    async def idle_leader() -> bool:
        return relay.is_leader and relay.idle

    await eventually(idle_leader, what="the relay to lead and wait for commits")
    return relay


async def _sent(fresh_database: str, relay: OutboxRelay, events: int) -> None:
    async def marked() -> bool:
        return relay.published == events and await pending_count(fresh_database) == 0

    await eventually(marked, timeout_s=30, what=f"{events} events sent and marked")


async def test_commits_made_while_the_relay_lingers_go_out_in_one_pass(fresh_database, sessions, kafka, workspace):
    relay = await _waiting_for_commits(fresh_database, kafka, linger_s=2.0)
    try:
        await _append(sessions, workspace, f"{workspace}-first", 1)

        async def lingering() -> bool:
            return relay.lingering

        await eventually(lingering, what="the first commit to wake the relay into its linger")
        await _append(sessions, workspace, f"{workspace}-second", 1)
        await _sent(fresh_database, relay, 2)
        assert relay.passes == 1
    finally:
        await relay.stop()


async def test_without_a_linger_each_commit_goes_out_in_a_pass_of_its_own(fresh_database, sessions, kafka, workspace):
    relay = await _waiting_for_commits(fresh_database, kafka, linger_s=0.0)
    try:
        await _append(sessions, workspace, f"{workspace}-first", 1)
        await _sent(fresh_database, relay, 1)
        await _append(sessions, workspace, f"{workspace}-second", 1)
        await _sent(fresh_database, relay, 2)
        assert relay.passes == 2
        assert relay.lingered == 0
    finally:
        await relay.stop()


async def test_a_backlog_goes_out_back_to_back_without_lingering(fresh_database, sessions, kafka, workspace):
    await _append(sessions, workspace, f"{workspace}-backlog", 25)
    relay = OutboxRelay(
        name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka, batch_size=10, linger_s=0.5
    )
    relay.start()
    try:
        await _sent(fresh_database, relay, 25)
        # Three passes (10, 10, 5): a linger before the first and before the pass that marks the last rows,
        # none after a full pass.
        assert relay.passes == 3
        assert relay.lingered == 2
    finally:
        await relay.stop()

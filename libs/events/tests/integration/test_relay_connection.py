"""The relay's connection: its session settings, and a connection that stopped answering (it steps down and reconnects)."""

import uuid

import pytest
from sqlalchemy.engine import make_url

from sous_events.outbox import OutboxRelay, pending_count
from sous_events.store import EventStore
from sous_local.faultproxy import FaultProxy
from sous_local.pipeline import pipeline_event

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.fault]


async def test_a_silent_connection_times_out_and_the_relay_takes_over_again(fresh_database, sessions, kafka, workspace):
    url = make_url(fresh_database)
    proxy = await FaultProxy(url.host or "127.0.0.1", int(url.port or 5432)).start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    relay = OutboxRelay(
        name=f"relay-{uuid.uuid4().hex[:8]}",
        database_url=through_proxy,
        kafka=kafka,
        fallback_poll_s=0.5,
        connect_timeout_s=2.0,
        command_timeout_s=2.0,
    )
    relay.start()
    try:

        async def leading() -> bool:
            return relay.is_leader

        await eventually(leading, what="the relay to lead")
        # The connection stays open but nothing comes back, as when a route or the server silently dies.
        proxy.latency(3600)

        async def stepped_down() -> bool:
            return not relay.is_leader

        await eventually(stepped_down, timeout_s=60, what="the relay to notice its dead connection")
        # The network heals: the stuck sessions are dropped (as server keepalives would) and service resumes.
        proxy.latency(0)
        proxy.cut()
        proxy.restore()
        async with sessions() as s, s.begin():
            await EventStore().append(s, [pipeline_event(workspace, "after", 1)], expected_version=0)

        async def drained() -> bool:
            return relay.is_leader and await pending_count(fresh_database) == 0

        await eventually(drained, timeout_s=60, what="the relay to reconnect, lead and publish")
        assert relay.published == 1
    finally:
        await relay.stop()
        await proxy.stop()


async def test_the_relays_commits_do_not_wait_for_the_wal_flush(fresh_database, kafka):
    relay = OutboxRelay(name=f"relay-{uuid.uuid4().hex[:8]}", database_url=fresh_database, kafka=kafka)
    conn = await relay._connect()
    try:
        # Set by the relay's own session, whatever the server's default: a forgotten mark or delete only sends
        # its rows again (consumers drop the copies), while the appends keep the server's synchronous commit.
        rows = await conn.fetch(
            "SELECT name, setting, source FROM pg_settings WHERE name IN ('synchronous_commit', 'enable_bitmapscan')"
        )
        assert {(r["name"], r["setting"], r["source"]) for r in rows} == {
            ("synchronous_commit", "off", "client"),
            ("enable_bitmapscan", "off", "client"),
        }
    finally:
        await conn.close()

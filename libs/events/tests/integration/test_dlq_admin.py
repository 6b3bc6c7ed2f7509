"""The operators' admin API and `sous dlq` over real HTTP, PostgreSQL and broker."""

import asyncio
import contextlib
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text

from sous_events.codec import encode
from sous_events.dlq import dead_letter_headers
from sous_events.kafka import KafkaConfig, make_producer
from sous_events.topics import QUALITY, dlq_topic
from sous_local.cli import main as sous_main
from sous_local.pipeline import pipeline_event
from sous_service.dlq_api import OPS_ADMIN, mount_admin
from sous_service.internal_client import ContextAuth
from sous_service.internal_context import InternalContext
from sous_service.web import create_service_app

pytestmark = pytest.mark.integration

SECRET = "admin-api-test-secret-" + "x" * 20
OPERATOR = InternalContext(workspace_id="*", user_id="ops", scopes=(OPS_ADMIN,), auth_type="internal")
MEMBER = InternalContext(workspace_id="w", user_id="u", scopes=("recipes:read", "recipes:write"))


async def _dead_letter(kafka: KafkaConfig, key: str) -> None:
    """A record as a consumer dead-letters it after a handler kept failing."""
    original = SimpleNamespace(
        topic=QUALITY, partition=0, offset=41, headers=[("event_id", f"e-{key}".encode()), ("event_type", b"X")]
    )
    headers = dead_letter_headers(
        original, consumer="c-admin", error=RuntimeError("boom"), attempts=5, reason="handler"
    )
    producer = make_producer(kafka)
    await producer.start()
    try:
        # A well-formed event of a workspace no consumer handles: re-driving it disturbs no other test.
        value = encode(pipeline_event(f"{key}-nobody", key, 1))
        await producer.send_and_wait(dlq_topic(QUALITY), value=value, key=key.encode(), headers=headers)
    finally:
        await producer.stop()


async def _parked_row(engine, key: str) -> int:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        row_id = await conn.execute(
            text(
                "INSERT INTO outbox (event_id, topic, key, value, headers, parked_at, last_error, attempts) "
                "VALUES ('ev-big', :t, :k, :v, '[]'::jsonb, now(), 'MessageSizeTooLargeError: too big', 1) RETURNING id"
            ),
            {"t": QUALITY, "k": key, "v": encode(pipeline_event(f"{key}-nobody", key, 1))},
        )
        return int(row_id.scalar_one())


async def _end_offsets(kafka: KafkaConfig) -> dict[TopicPartition, int]:
    producer, consumer = make_producer(kafka), AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    await consumer.start()
    try:
        tps = [TopicPartition(QUALITY, p) for p in await producer.partitions_for(QUALITY)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()
        await producer.stop()


async def _redriven_headers(kafka: KafkaConfig, since: dict[TopicPartition, int], key: str) -> dict[str, bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        async with asyncio.timeout(60):
            while True:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if record.key == key.encode():
                            return dict(record.headers)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def _served(app):  # type: ignore[no-untyped-def]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_admin_api_and_cli_list_show_redrive_and_resend(engine, kafka, workspace, monkeypatch, tmp_path, capsys):
    key = f"{workspace}-dead"
    await _dead_letter(kafka, key)
    row_id = await _parked_row(engine, f"{workspace}-parked")
    app = create_service_app(title="t", description="d", internal_secret=SECRET, service_name="quality")
    mount_admin(app, SimpleNamespace(engine=engine, kafka=kafka))
    async with _served(app) as url:
        as_operator = httpx.AsyncClient(base_url=url, auth=ContextAuth(OPERATOR, SECRET, "quality"), timeout=60)
        as_member = httpx.AsyncClient(base_url=url, auth=ContextAuth(MEMBER, SECRET, "quality"), timeout=60)
        async with as_operator as ops, as_member as member:
            assert (await httpx.AsyncClient(base_url=url).get("/admin/dlq")).status_code == 401
            refused = await member.get("/admin/dlq")
            assert refused.status_code == 403 and refused.json()["code"] == "missing_scope"

            listed = (await ops.get("/admin/dlq", params={"topic": QUALITY})).json()
            mine = [i for i in listed["items"] if i["key"] == key]
            assert [(i["reason"], i["attempts"], i["consumer"], i["source"]) for i in mine] == [
                ("handler", 5, "c-admin", f"{QUALITY}/0/41")
            ]
            dead_id = mine[0]["id"]
            shown = (await ops.get(f"/admin/dlq/{dead_id}")).json()
            assert shown["value"]["aggregate_id"] == key and "RuntimeError: boom" in shown["traceback"]
            assert shown["headers"] == {"event_id": f"e-{key}", "event_type": "X"}
            bad = await ops.get("/admin/dlq/nonsense")
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "dead_letter_id"
            assert (await ops.get(f"/admin/dlq/{dlq_topic(QUALITY)}:0:99999999")).status_code == 404
            unknown_topic = await ops.get("/admin/dlq", params={"topic": "nope"})
            assert unknown_topic.status_code == 422 and unknown_topic.json()["errors"][0]["field"] == "topic"
            assert (await ops.post("/admin/dlq/redrive", json={})).status_code == 422
            bad_ids = await ops.post("/admin/dlq/redrive", json={"ids": ["x"]})
            assert bad_ids.status_code == 422 and bad_ids.json()["errors"][0]["field"] == "ids[0]"

            since = await _end_offsets(kafka)
            redriven = await ops.post("/admin/dlq/redrive", json={"ids": [dead_id]})
            assert redriven.status_code == 200 and redriven.json() == {"redriven": [dead_id], "count": 1}
            headers = await _redriven_headers(kafka, since, key)
            assert headers["dlq_redriven_from"] == dead_id.encode() and "dlq_error" not in headers
            assert headers["event_id"] == f"e-{key}".encode()

            parked = (await ops.get("/admin/outbox/parked")).json()
            assert parked["service"] == "quality" and parked["total"] == 1
            assert parked["items"][0]["id"] == row_id and "MessageSizeTooLarge" in parked["items"][0]["last_error"]
            assert (await ops.get(f"/admin/outbox/parked/{row_id}")).json()["held_back"] == 0
            assert (await ops.get("/admin/outbox/parked/abc")).status_code == 422
            assert (await ops.post("/admin/outbox/parked/resend", json={"ids": []})).status_code == 422

        # The CLI, signing with the internal secret, over the same API.
        monkeypatch.setenv("SOUS_INTERNAL_SECRET", SECRET)
        base = ["dlq", "--state-dir", str(tmp_path), "--service-url", f"quality={url}"]
        capsys.readouterr()
        assert await asyncio.to_thread(sous_main, [*base, "list", "--topic", QUALITY]) == 0
        assert dead_id in capsys.readouterr().out
        assert await asyncio.to_thread(sous_main, [*base, "show", dead_id]) == 0
        assert "RuntimeError: boom" in capsys.readouterr().out
        assert await asyncio.to_thread(sous_main, [*base, "outbox"]) == 0
        assert f"row {row_id}" in capsys.readouterr().out
        assert await asyncio.to_thread(sous_main, [*base, "outbox-resend", str(row_id), "--service", "quality"]) == 0
        assert f"[{row_id}]" in capsys.readouterr().out
        assert await asyncio.to_thread(sous_main, [*base, "outbox-discard", str(row_id), "--service", "quality"]) == 1
        assert "not found" in capsys.readouterr().err  # no longer parked
        assert await asyncio.to_thread(sous_main, [*base, "redrive"]) == 1
        monkeypatch.setenv("SOUS_INTERNAL_SECRET", "a-different-secret-" + "y" * 20)
        assert await asyncio.to_thread(sous_main, [*base, "list"]) == 1
        assert "HTTP 401" in capsys.readouterr().err
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT parked_at FROM outbox WHERE id = :i"), {"i": row_id})).scalar() is None

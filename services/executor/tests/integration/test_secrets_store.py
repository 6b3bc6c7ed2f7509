"""The secret store on PostgreSQL: the write-only API, workspace scoping, key rotation by re-wrapping."""

from __future__ import annotations

import pytest
from executor_harness import Running, context_header
from sqlalchemy import select

from sous_executor.secrets.crypto import Keyring
from sous_executor.secrets.store import SecretStore
from sous_executor.secrets.tables import workspace_secrets
from sous_local.testing import unique

pytestmark = pytest.mark.integration


async def test_values_are_write_only_and_invalid_text_is_refused(executor: Running) -> None:
    ws = unique("ws")
    headers = context_header(executor.settings, ws)
    put = await executor.client.put("/api/secrets/openai", json={"value": "sk-123"}, headers=headers)
    assert put.status_code == 201 and "sk-123" not in put.text
    for raw in (b'{"value": "\\ud800"}', b'{"value": "a\\u0000b"}', b'{"value": ""}'):
        bad = await executor.client.put(
            "/api/secrets/x", content=raw, headers={**headers, "Content-Type": "application/json"}
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "value"
    assert (await executor.client.put("/api/secrets/a%20b", json={"value": "v"}, headers=headers)).status_code == 422
    listed = await executor.client.get("/api/secrets", headers=headers)
    assert [s["name"] for s in listed.json()["items"]] == ["openai"] and "sk-123" not in listed.text
    other = context_header(executor.settings, unique("ws"))
    assert (await executor.client.get("/api/secrets/openai", headers=other)).status_code == 404
    assert await executor.executor.secrets.reveal(ws, "openai") == "sk-123"
    async with executor.executor.runtime.sessions() as session:
        stored = (await session.execute(select(workspace_secrets.c.ciphertext))).scalars().all()
    assert all(b"sk-123" not in bytes(c) for c in stored)


async def test_rotation_rewraps_data_keys_under_the_new_kek(executor: Running) -> None:
    ws = unique("ws")
    old = executor.executor.secrets
    await old.put(ws, "k", "value-1", "tester")
    sessions = executor.executor.runtime.sessions
    rotated = SecretStore(sessions, Keyring.from_setting("k2:" + "n" * 40 + "," + executor.settings.secrets_kek))
    assert await rotated.rewrap_all() >= 1
    assert await rotated.rewrap_all() == 0
    new_only = SecretStore(sessions, Keyring.from_setting("k2:" + "n" * 40))
    assert await new_only.reveal(ws, "k") == "value-1"
    assert await old.reveal(ws, "k") is None  # the old KEK alone no longer opens it

"""The pool without a ping per checkout: a pooled connection the server closed (a restart, a terminated
backend, a proxy that cut it) is replaced at checkout, so the next transaction succeeds on a fresh one."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_local.testing import eventually, terminate_backend

pytestmark = pytest.mark.integration


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(
    engine: AsyncEngine, fresh_database: str
) -> None:
    assert not engine.pool._pre_ping  # type: ignore[attr-defined]  # no round trip per checkout
    async with engine.connect() as conn:
        pooled = (await conn.get_raw_connection()).driver_connection
        first = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
    assert pooled is not None
    await terminate_backend(fresh_database, first)

    async def seen_closed() -> bool:
        return bool(pooled.is_closed())

    await eventually(seen_closed, what="the driver to see the terminated backend's connection closed")

    # The pool holds one connection, the closed one: without the checkout check this statement would fail.
    second = await backend_pid(engine)
    assert second != first


async def test_json_columns_round_trip_through_the_fast_codec(engine: AsyncEngine) -> None:
    value = {"text": "naïve ✓", "big": 2**70, "nested": [1, 2.5, None, True]}
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE docs (body jsonb NOT NULL)"))
        await conn.execute(
            text("INSERT INTO docs VALUES (:body)").bindparams(bindparam("body", type_=JSONB)), {"body": value}
        )
        stored = (await conn.execute(text("SELECT body FROM docs"))).scalar_one()
    assert stored == value

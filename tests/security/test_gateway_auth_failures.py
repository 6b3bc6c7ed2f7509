"""Findings 11 and 5: failed authentication was not limited; clients behind a proxy shared one bucket."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e

BAD_KEY = "sous_0123456789abcdef_" + "A" * 32


def _client_address() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}, 203.0.113.{uuid.uuid4().int % 250 + 1}"


async def test_repeated_failed_authentication_is_refused_per_client(gateway: httpx.AsyncClient, make_api):
    # The security stack trusts 127.0.0.1 as a proxy: X-Forwarded-For names the client, rightmost first.
    attacker = {"X-Forwarded-For": _client_address(), "X-API-Key": BAD_KEY}
    statuses = [(await gateway.get("/api/agents", headers=attacker)).status_code for _ in range(5)]
    assert statuses == [401] * 5  # SOUS_AUTH_FAILURE_BURST
    refused = await gateway.get("/api/agents", headers=attacker)
    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_auth_failures")
    assert int(refused.headers["Retry-After"]) >= 1
    # Refused before any check: even a valid credential from that client waits.
    api = make_api()
    valid = await gateway.get("/api/agents", headers={**api.headers, "X-Forwarded-For": attacker["X-Forwarded-For"]})
    assert valid.status_code == 429
    # Other clients behind the same proxy keep their own budget.
    neighbour = {"X-Forwarded-For": _client_address(), "X-API-Key": BAD_KEY}
    assert (await gateway.get("/api/agents", headers=neighbour)).status_code == 401
    assert (
        await gateway.get("/api/agents", headers={**api.headers, "X-Forwarded-For": _client_address()})
    ).status_code == 200


async def test_a_bad_bearer_token_counts_too(gateway: httpx.AsyncClient):
    client = {"X-Forwarded-For": _client_address(), "Authorization": "Bearer not.a.jwt"}
    statuses = [(await gateway.get("/api/workflow-recipes", headers=client)).status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429

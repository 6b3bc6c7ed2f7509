"""Finding 5: inbound webhooks on Standard Webhooks, through the gateway as a third party calls them.

Attacks: an unsigned delivery to a webhook with no secret, a forged or stale signature, replaying a
captured delivery, and flooding one webhook.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sous_executor.webhooks.signing import sign

from .conftest import Api
from .secure_helpers import agent, recipe, wait_finished

pytestmark = pytest.mark.e2e

OFFLINE = {"provider": "offline", "model_id": "sous-offline-1"}


async def webhook_recipe(api: Api, schedule: dict) -> str:
    made = await agent(api, OFFLINE)
    created = await recipe(api, made["id"], "hello {input.who}", schedule_config=schedule)
    return str(created["schedule_config"]["webhook_id"])


async def deliver(gateway: httpx.AsyncClient, webhook_id: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await gateway.post(
        f"/api/webhooks/recipe/{webhook_id}", content=body, headers={"Content-Type": "application/json", **headers}
    )


async def test_a_webhook_without_a_secret_refuses_every_delivery(make_api, gateway: httpx.AsyncClient) -> None:
    api = make_api()
    webhook_id = await webhook_recipe(api, {"type": "webhook"})
    body = json.dumps({"who": "anyone"}).encode()
    assert (await deliver(gateway, webhook_id, body, {})).status_code == 401
    signed = sign("whatever", f"msg_{uuid.uuid4().hex}", body)
    refused = await deliver(gateway, webhook_id, body, signed)
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_signature"


async def test_signed_fresh_deliveries_run_once_and_forgeries_do_not(make_api, gateway: httpx.AsyncClient) -> None:
    api = make_api()
    secret = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGhlLXdlYmhvb2stdGVzdA=="
    await api.ok("PUT", "/api/secrets/hook", 201, json={"value": secret})
    webhook_id = await webhook_recipe(api, {"type": "webhook", "webhook_secret": "hook"})
    body = json.dumps({"who": "partner"}).encode()

    assert (await deliver(gateway, webhook_id, body, {})).status_code == 401
    forged = sign("whsec_" + "b3RoZXIta2V5LW9mLWFuLWF0dGFja2Vy", f"msg_{uuid.uuid4().hex}", body)
    assert (await deliver(gateway, webhook_id, body, forged)).status_code == 401
    stale = sign(secret, f"msg_{uuid.uuid4().hex}", body, at=datetime.now(UTC) - timedelta(minutes=6))
    assert (await deliver(gateway, webhook_id, body, stale)).status_code == 401
    tampered = sign(secret, f"msg_{uuid.uuid4().hex}", body)
    assert (await deliver(gateway, webhook_id, body.replace(b"partner", b"mallory"), tampered)).status_code == 401

    good = sign(secret, f"msg_{uuid.uuid4().hex}", body)
    accepted = await deliver(gateway, webhook_id, body, good)
    assert accepted.status_code == 202, accepted.text
    replayed = await deliver(gateway, webhook_id, body, good)
    assert replayed.status_code == 409 and replayed.json()["code"] == "webhook_replayed"

    runs = await api.ok("GET", f"/api/workflow-recipes/{accepted.json()['recipe_id']}/executions")
    assert runs["total"] == 1
    done = await wait_finished(api, accepted.json()["recipe_id"], accepted.json()["execution_id"])
    assert done["triggered_by"] == "webhook" and "hello partner" in done["step_results"][0]["output"]


async def test_one_webhook_is_rate_limited(make_api, gateway: httpx.AsyncClient) -> None:
    api = make_api()
    await api.ok("PUT", "/api/secrets/hook", 201, json={"value": "raw-shared-secret-of-this-hook"})
    flooded = await webhook_recipe(api, {"type": "webhook", "webhook_secret": "hook"})
    calm = await webhook_recipe(api, {"type": "webhook", "webhook_secret": "hook"})
    body = b"{}"
    statuses = []
    for _ in range(4):  # SOUS_WEBHOOK_RATE_LIMIT_PER_MINUTE is 3 in the security stack
        response = await deliver(gateway, flooded, body, sign("raw-shared-secret-of-this-hook", uuid.uuid4().hex, body))
        statuses.append(response.status_code)
    assert statuses == [202, 202, 202, 429]
    other = await deliver(gateway, calm, body, sign("raw-shared-secret-of-this-hook", uuid.uuid4().hex, body))
    assert other.status_code == 202

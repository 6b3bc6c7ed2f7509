"""Finding 1: workspace secrets instead of arbitrary executor environment variables.

Attacks through the gateway: naming an executor variable (SOUS_INTERNAL_SECRET) as an agent's key or a
webhook's secret, probing whether a variable or another workspace's secret exists, reading secret values
back, learning key references from marketplace listings, and a provider echoing a key into step errors.
"""

from __future__ import annotations

import uuid

import pytest

from sous_local.stack import Stack

from .conftest import GRANTED_ENV, GRANTED_VALUE, GRANTED_WORKSPACE, eventually
from .provider_double import ProviderDouble
from .secure_helpers import agent, recipe, run, run_agent

pytestmark = pytest.mark.e2e


def model(provider: ProviderDouble, **extra: str) -> dict[str, str]:
    return {"provider": "openai", "model_id": f"m-{uuid.uuid4().hex[:8]}", "base_url": f"{provider.origin}/v1", **extra}


async def test_an_agent_cannot_name_an_executor_variable(make_api, stack: Stack, provider: ProviderDouble) -> None:
    attacker = make_api()
    bodies = []
    for name in ("SOUS_INTERNAL_SECRET", "SOUS_NO_SUCH_VARIABLE_XYZ"):
        config = model(provider, api_key_env=name)
        response = await attacker.request(
            "POST", "/api/agents", json={"name": f"a-{uuid.uuid4().hex[:6]}", "model_config": config}
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["model_config.api_key_env"]
        bodies.append(response.json()["errors"][0]["message"])
    # The same answer whether the variable exists or not: no oracle.
    assert bodies[0] == bodies[1]
    existing = await agent(attacker, model(provider))
    update = await attacker.request(
        "PUT", f"/api/agents/{existing['id']}", json={"model_config": model(provider, api_key_env="SOUS_JWT_SECRET")}
    )
    assert update.status_code == 422
    hook = await attacker.request(
        "POST",
        "/api/workflow-recipes",
        json={
            "template_id": f"r-{uuid.uuid4().hex[:6]}",
            "name": "hook",
            "description": "d",
            "template_definition": {},
            "steps": [{"step_id": "s", "order": 1, "agent_id": existing["id"]}],
            "schedule_config": {"type": "webhook", "webhook_secret_env": "SOUS_INTERNAL_SECRET"},
        },
    )
    assert hook.status_code == 422 and hook.json()["errors"][0]["field"] == "schedule_config.webhook_secret_env"
    assert not any(stack.internal_secret in auth for auth in (c["authorization"] for c in provider.calls))


async def test_a_granted_variable_is_used_for_its_workspace_only(make_api, provider: ProviderDouble) -> None:
    granted = make_api(workspace=GRANTED_WORKSPACE)
    config = model(provider, api_key_env=GRANTED_ENV)
    done = await run_agent(granted, config)
    assert done["status"] == "completed", done
    assert provider.seen(config["model_id"]) == [f"Bearer {GRANTED_VALUE}"]
    other = make_api()
    refused = await other.request(
        "POST", "/api/agents", json={"name": "x", "model_config": model(provider, api_key_env=GRANTED_ENV)}
    )
    assert refused.status_code == 422


async def test_secret_values_are_write_only_and_used_only_in_their_workspace(
    make_api, provider: ProviderDouble
) -> None:
    owner = make_api()
    value = f"sk-live-{uuid.uuid4().hex}"
    created = await owner.request("PUT", "/api/secrets/openai", json={"value": value})
    assert created.status_code == 201, created.text
    replaced = await owner.request("PUT", "/api/secrets/openai", json={"value": value})
    assert replaced.status_code == 200
    listed = await owner.request("GET", "/api/secrets")
    one = await owner.request("GET", "/api/secrets/openai")
    assert [s["name"] for s in listed.json()["items"]] == ["openai"] and one.json()["name"] == "openai"
    for response in (created, replaced, listed, one):
        assert value not in response.text
    member = make_api(workspace=owner.workspace, roles=())
    assert (await member.request("GET", "/api/secrets")).status_code == 403
    assert (await member.request("PUT", "/api/secrets/x", json={"value": "v"})).status_code == 403
    bad_name = await owner.request("PUT", "/api/secrets/..%2fx", json={"value": "v"})
    assert bad_name.status_code in (400, 404, 422)

    config = model(provider, api_key_secret="openai")
    done = await run_agent(owner, config)
    assert done["status"] == "completed", done
    assert provider.seen(config["model_id"]) == [f"Bearer {value}"]
    events = await owner.request(
        "GET", f"/api/workflow-recipes/{done['recipe_id']}/executions/{done['execution_id']}/events"
    )
    assert events.status_code == 200 and value not in events.text and value not in str(done)

    # Another workspace naming the same secret gets the same error as for a secret that exists nowhere.
    other = make_api()
    errors = []
    for name in ("openai", f"nothing-{uuid.uuid4().hex[:6]}"):
        theirs = model(provider, api_key_secret=name)
        failed = await run_agent(other, theirs)
        assert failed["status"] == "failed" and provider.seen(theirs["model_id"]) == []
        errors.append(failed["step_results"][0]["error"])
    assert errors[0] == errors[1] and "openai" not in errors[0]
    assert (await other.request("GET", "/api/secrets/openai")).status_code == 404

    assert (await owner.request("DELETE", "/api/secrets/openai")).status_code == 204
    assert (await owner.request("GET", "/api/secrets/openai")).status_code == 404


async def test_a_provider_echoing_the_key_does_not_reach_the_step_error(make_api, provider: ProviderDouble) -> None:
    api = make_api()
    value = f"sk-reject-{uuid.uuid4().hex}"
    await api.ok("PUT", "/api/secrets/bad-key", 201, json={"value": value})
    config = model(provider, api_key_secret="bad-key")
    done = await run_agent(api, config)
    assert provider.seen(config["model_id"]) == [f"Bearer {value}"]
    error = done["step_results"][0]["error"]
    assert done["status"] == "failed" and "401" in error and "invalid_api_key" in error
    assert value[:8] not in error and value[-4:] not in error and "Incorrect API key" not in error


async def test_listings_carry_no_secret_references_and_installs_ask_for_bindings(make_api, provider) -> None:
    creator = make_api()
    moderator = make_api(roles=("moderator",))
    installer = make_api()
    await creator.ok("PUT", "/api/secrets/team-openai", 201, json={"value": "sk-team-value"})
    made = await agent(creator, model(provider, api_key_secret="team-openai"))
    shared = await recipe(creator, made["id"], tags=["writing"])

    async def submitted():
        response = await creator.request(
            "POST", "/api/workflow-recipes/submit", json={"recipe_id": shared["template_id"]}
        )
        return response.json() if response.status_code == 200 else None

    listing_id = (await eventually(submitted, what="the marketplace to know the recipe"))["item_id"]
    await moderator.ok("POST", f"/api/marketplace/listings/{listing_id}/approve")
    page = await installer.request("GET", "/api/marketplace/listings", params={"limit": 100})
    detail = await installer.request("GET", f"/api/marketplace/listings/{listing_id}")
    for response in (page, detail):
        assert response.status_code == 200
        assert "team-openai" not in response.text and 'api_key_secret":' not in response.text
    assert detail.json()["agents"][0]["bind_secrets"] == ["model_config.api_key_secret"]
    installed = await installer.ok("POST", f"/api/workflow-recipes/install/{listing_id}")
    assert [(b["agent_name"], b["field"]) for b in installed["secrets_to_bind"]] == [
        (made["name"], "model_config.api_key_secret")
    ]


async def test_a_bound_secret_lets_an_installed_style_agent_run(make_api, provider: ProviderDouble) -> None:
    api = make_api()
    made = await agent(api, model(provider))
    await api.ok("PUT", "/api/secrets/mine", 201, json={"value": "sk-mine-123"})
    config = {**made["model_config"], "api_key_secret": "mine"}
    updated = await api.ok("PUT", f"/api/agents/{made['id']}", json={"model_config": config})
    assert updated["model_config"]["api_key_secret"] == "mine"
    shared = await recipe(api, made["id"])

    # The executor learns the agent's change from the catalog's events: run until the run uses it.
    async def bound() -> bool:
        done = await run(api, shared["template_id"])
        return done["status"] == "completed" and provider.seen(config["model_id"])[-1:] == ["Bearer sk-mine-123"]

    await eventually(bound, what="a run with the bound key")

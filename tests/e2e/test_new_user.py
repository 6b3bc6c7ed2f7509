"""What a new user runs into, through the gateway: unknown fields refused by name, names sorted as people
read them, and each write readable at once by the next step."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .conftest import Api, create_agent, create_recipe, eventually

pytestmark = pytest.mark.e2e

NAMES = ["Charlie", "alpha", "Bravo"]
READ_ORDER = ["alpha", "Bravo", "Charlie"]


def step(agent_id: str, step_id: str = "s1", **extra: Any) -> dict[str, Any]:
    return {"step_id": step_id, "order": 1, "agent_id": agent_id, "prompt_template": "Say {input.topic}", **extra}


async def refused_field(api: Api, method: str, path: str, body: dict[str, Any]) -> str:
    response = await api.request(method, path, json=body)
    assert response.status_code == 422, f"{method} {path}: {response.status_code} {response.text}"
    error = response.json()
    assert error["code"] == "validation_error"
    return str(error["errors"][0]["field"])


async def test_an_unknown_field_is_refused_by_name_by_every_service(make_api):
    api = make_api()
    agent = await create_agent(api)
    recipe = await create_recipe(api, [step(agent["id"])])
    tid = recipe["template_id"]
    agent_body = {"name": "x", "model_config": {"provider": "offline", "model_id": "m", "top_p": 1}}
    assert await refused_field(api, "POST", "/api/agents", agent_body) == "model_config.top_p"
    body = {"template_id": "t", "name": "T", "description": "", "template_definition": {}, "steps": [step("a")]}
    body["execution_config"] = {"timeout_per_stp": 5}
    assert await refused_field(api, "POST", "/api/workflow-recipes", body) == "execution_config.timeout_per_stp"
    assert await refused_field(api, "PUT", f"/api/workflow-recipes/{tid}", {"is_publc": False}) == "is_publc"
    assert await refused_field(api, "POST", f"/api/workflow-recipes/{tid}/execute", {"inputs": {}}) == "inputs"
    assess = {"execution_id": "e", "executionId": "e"}
    assert await refused_field(api, "POST", f"/api/workflow-recipes/{tid}/assess-quality", assess) == "executionId"
    submit = {"recipe_id": tid, "categroy": "News"}
    assert await refused_field(api, "POST", "/api/workflow-recipes/submit", submit) == "categroy"
    key = {"name": "ci", "scopes": ["recipes:read"], "expires": 3}
    assert await refused_field(api, "POST", "/api/api-keys", key) == "expires"
    workflow = {"name": "W", "task_template": "t", "configuration": {"retries": 1}}
    assert await refused_field(api, "POST", "/api/workflows", workflow) == "configuration.retries"
    unchanged = await api.ok("GET", f"/api/workflow-recipes/{tid}")
    assert unchanged["revision"] == recipe["revision"]


async def test_names_sort_as_people_read_them_on_every_list(make_api):
    api = make_api()
    agents = [await create_agent(api, name=name) for name in NAMES]
    for name in NAMES:
        await create_recipe(api, [step(agents[0]["id"])], name=name)
        await api.ok("POST", "/api/workflows", 201, json={"name": name, "task_template": "Write about bread"})

    async def names(path: str, key: str = "name", **params: Any) -> list[str]:
        page = await api.ok("GET", path, params={"sort_by": "name", **params})
        return [item[key] for item in page["items"]]

    assert await names("/api/agents") == READ_ORDER
    assert await names("/api/workflow-recipes") == READ_ORDER
    assert await names("/api/workflows") == READ_ORDER
    # Stable: the same page twice, and paging walks the same order.
    assert [*(await names("/api/agents", limit=2)), *(await names("/api/agents", skip=2, limit=2))] == READ_ORDER


async def finished_view(api: Api, template_id: str, execution_id: str) -> dict[str, Any]:
    """What a person watches: the execution view, until it says the run ended."""

    async def ended() -> dict[str, Any] | None:
        view = await api.ok("GET", f"/api/workflow-recipes/{template_id}/executions/{execution_id}")
        return view if view["status"] in ("completed", "failed", "cancelled") else None

    return await eventually(ended, timeout_s=90, what=f"execution {execution_id} to end")  # type: ignore[no-any-return]


async def test_an_agent_is_used_in_a_recipe_and_run_right_after_it_is_created(make_api):
    api = make_api()
    agent = await create_agent(api)
    recipe = await create_recipe(api, [step(agent["id"])], inputs={"topic": {"type": "string", "default": "rye"}})
    started = await api.ok("POST", f"/api/workflow-recipes/{recipe['template_id']}/execute", 202, json={})
    view = await finished_view(api, recipe["template_id"], started["recipe_execution_id"])
    assert view["status"] == "completed", view


async def test_a_finished_run_is_assessed_learned_from_and_listed_with_its_score_at_once(make_api):
    api = make_api()
    agent = await create_agent(api)
    recipe = await create_recipe(
        api,
        [step(agent["id"])],
        inputs={"topic": {"type": "string", "default": "rye"}},
        execution_config={"mode": "sequential", "auto_learning": False},
    )
    tid = recipe["template_id"]
    started = await api.ok("POST", f"/api/workflow-recipes/{tid}/execute", 202, json={})
    eid = started["recipe_execution_id"]
    await finished_view(api, tid, eid)
    assessed = await api.ok("POST", f"/api/workflow-recipes/{tid}/assess-quality", json={"execution_id": eid})
    learned = await api.ok("POST", f"/api/workflow-recipes/{tid}/learn", json={"execution_id": eid})
    assert learned["execution_id"] == eid
    listed = await api.ok("GET", f"/api/workflow-recipes/{tid}/executions")
    assert listed["recipe_quality_score"] == pytest.approx(assessed["rolling_score"])
    assert eid in {item["recipe_execution_id"] for item in listed["items"]}


async def test_a_recipe_is_submitted_right_after_it_is_created_and_listings_sort_by_name(make_api):
    creator = make_api()
    moderator = make_api(roles=("moderator",))
    agent = await create_agent(creator)
    token = uuid.uuid4().hex[:8]
    listing_ids = []
    for name in NAMES:
        recipe = await create_recipe(creator, [step(agent["id"])], name=f"{name} {token}")
        submitted = await creator.ok("POST", "/api/workflow-recipes/submit", json={"recipe_id": recipe["template_id"]})
        listing_ids.append(submitted["item_id"])
    for listing_id in listing_ids:
        await moderator.ok("POST", f"/api/marketplace/listings/{listing_id}/approve")
    page = await creator.ok("GET", "/api/marketplace/listings", params={"search": token, "sort_by": "name"})
    assert [item["name"] for item in page["items"]] == [f"{name} {token}" for name in READ_ORDER]


async def test_every_service_is_ready_only_with_its_consumers_joined(stack, gateway):
    for name in ("catalog", "executor", "quality", "marketplace"):
        ready = (await gateway.get(f"{stack.urls[name]}/readyz")).json()
        assert ready["status"] == "ready" and ready["checks"]["consumers"] is True, (name, ready)

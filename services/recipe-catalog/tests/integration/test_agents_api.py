"""Agents over HTTP: CRUD, validation, secrets, deletion guarded by recipes, authentication."""

import pytest

from sous_local.testing import unique

pytestmark = pytest.mark.integration


async def test_every_route_refuses_a_request_without_context(catalog):
    routes = [
        ("GET", "/api/agents"),
        ("POST", "/api/agents"),
        ("GET", "/api/agents/x"),
        ("PUT", "/api/agents/x"),
        ("DELETE", "/api/agents/x"),
        ("GET", "/api/workflow-recipes"),
        ("POST", "/api/workflow-recipes"),
        ("GET", "/api/workflow-recipes/categories/list"),
        ("GET", "/api/workflow-recipes/featured/list"),
        ("GET", "/api/workflow-recipes/stats/dashboard"),
        ("GET", "/api/workflow-recipes/x"),
        ("PUT", "/api/workflow-recipes/x"),
        ("DELETE", "/api/workflow-recipes/x"),
        ("POST", "/api/workflow-recipes/x/use"),
        ("GET", "/api/workflow-recipes/x/history"),
    ]
    for method, path in routes:
        response = await catalog.http.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["code"] == "invalid_internal_context"
    forged = {"X-Sous-Context": catalog.headers()["X-Sous-Context"][:-4] + "AAAA"}
    assert (await catalog.http.get("/api/agents", headers=forged)).status_code == 401
    health = await catalog.http.get("/healthz")
    assert health.status_code == 200


async def test_scopes_are_enforced(catalog):
    read_only = catalog.headers(scopes=("recipes:read",))
    assert (await catalog.http.get("/api/agents", headers=read_only)).status_code == 200
    response = await catalog.http.post("/api/agents", headers=read_only, json={"name": "a"})
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


async def test_agent_crud(catalog):
    created = await catalog.agent(
        name="Researcher",
        description="Finds Sources",
        model_config={
            "provider": "openai_compatible",
            "model_id": "llama-3",
            "base_url": "http://127.0.0.1:9000/v1",
            "api_key_secret": "llama-key",
            "temperature": 0.2,
            "max_tokens": 512,
        },
        skills=["calculator", "http_get"],
        configuration={"max_iterations": 4},
    )
    assert created["status"] == "active"
    assert created["model_config"]["api_key_secret"] == "llama-key"
    assert created["configuration"] == {"max_iterations": 4}
    assert created["revision"] == 1 and created["workspace_id"] == catalog.workspace
    agent_id = created["id"]
    other = await catalog.agent(name="Writer")

    got = await catalog.request("GET", f"/api/agents/{agent_id}")
    assert got.status_code == 200 and got.json()["name"] == "Researcher"

    listed = (await catalog.request("GET", "/api/agents", params={"search": "sOURCES"})).json()
    assert [a["id"] for a in listed["items"]] == [agent_id] and listed["total"] == 1
    page = (await catalog.request("GET", "/api/agents", params={"skip": 1, "limit": 1})).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["id"] == agent_id  # newest first

    updated = await catalog.request(
        "PUT", f"/api/agents/{agent_id}", json={"status": "disabled", "skills": ["calculator"]}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["status"] == "disabled" and updated.json()["skills"] == ["calculator"]
    assert updated.json()["revision"] == 2

    deleted = await catalog.request("DELETE", f"/api/agents/{agent_id}")
    assert deleted.status_code == 200 and deleted.json()["agent_id"] == agent_id
    assert (await catalog.request("GET", f"/api/agents/{agent_id}")).status_code == 404
    assert (await catalog.request("PUT", f"/api/agents/{agent_id}", json={"name": "x"})).status_code == 404
    assert (await catalog.request("DELETE", f"/api/agents/{agent_id}")).status_code == 404
    assert (await catalog.request("GET", f"/api/agents/{other['id']}")).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model_config": {"provider": "openai", "model_id": "gpt", "api_key": "sk-123"}}, "model_config.api_key"),
        ({"api_key": "sk-123"}, "api_key"),
        ({"skills": ["calculator", "  "]}, "skills"),
        ({"skills": [""]}, "skills"),
        ({"model_config": {"provider": "openai"}}, "model_config.model_id"),
        ({"model_config": {"provider": "openai", "model_id": "m", "temperature": -1}}, "model_config.temperature"),
        ({"model_config": {"provider": "openai", "model_id": "m", "base_url": "ftp://x"}}, "model_config.base_url"),
        ({"status": "sleeping"}, "status"),
        ({"configuration": {"max_iterations": 0}}, "configuration.max_iterations"),
        ({"name": ""}, "name"),
    ],
)
async def test_agent_validation_names_the_field(catalog, body, field):
    full = {"name": "A", "model_config": {"provider": "offline", "model_id": "echo"}, **body}
    response = await catalog.request("POST", "/api/agents", json=full)
    assert response.status_code == 422, response.text
    fields = [e["field"] for e in response.json()["errors"]]
    assert field in fields
    if "api_key" in field:
        assert "api_key_secret" in response.text
    # the same rule on update
    agent = await catalog.agent()
    update = await catalog.request("PUT", f"/api/agents/{agent['id']}", json=body)
    if field != "name" or body["name"] == "":
        assert update.status_code == 422, update.text
        assert field in [e["field"] for e in update.json()["errors"]]


async def test_agent_used_by_a_recipe_cannot_be_deleted(catalog):
    agent = await catalog.agent()
    first = await catalog.recipe(agent_id=agent["id"])
    second = await catalog.recipe(agent_id=agent["id"])
    response = await catalog.request("DELETE", f"/api/agents/{agent['id']}")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "agent_in_use"
    assert sorted(body["recipes"]) == sorted([first["template_id"], second["template_id"]])
    assert first["template_id"] in body["detail"]
    # the same agent id referenced in another workspace does not count
    for recipe in (first, second):
        assert (await catalog.request("DELETE", f"/api/workflow-recipes/{recipe['template_id']}")).status_code == 200
    assert (await catalog.request("DELETE", f"/api/agents/{agent['id']}")).status_code == 200


async def test_agents_are_isolated_by_workspace(catalog):
    agent = await catalog.agent()
    other = unique("ws")
    for method, path, body in [
        ("GET", f"/api/agents/{agent['id']}", None),
        ("PUT", f"/api/agents/{agent['id']}", {"name": "stolen"}),
        ("DELETE", f"/api/agents/{agent['id']}", None),
    ]:
        response = await catalog.request(method, path, workspace=other, json=body)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["code"] == "not_found"
    assert (await catalog.request("GET", "/api/agents", workspace=other)).json()["total"] == 0
    # nor can another workspace's recipe reference it
    response = await catalog.request("POST", "/api/workflow-recipes", workspace=other, json=catalog.body(agent["id"]))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"steps[0].agent_id", "steps[1].agent_id"}
    assert (await catalog.request("GET", f"/api/agents/{agent['id']}")).json()["name"] == agent["name"]

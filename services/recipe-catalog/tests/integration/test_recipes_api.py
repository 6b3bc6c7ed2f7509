"""Recipes over HTTP: CRUD, validation, system recipes, concurrency, history, discovery, isolation."""

import asyncio

import pytest

from sous_local.testing import unique
from sous_service.caller import Caller

pytestmark = pytest.mark.integration

BASE = "/api/workflow-recipes"


async def test_create_get_update_delete(catalog):
    agent = await catalog.agent(name="Reader", skills=["calculator", "time"])
    response = await catalog.request(
        "POST",
        BASE,
        json=catalog.body(
            agent["id"],
            template_id="daily-news",
            schedule_config={"type": "webhook", "webhook_secret": "news-hook-secret"},
            execution_config={"mode": "parallel", "parallel_limit": 2, "max_cost_usd": 0.5},
        ),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] and body["recipe"]["template_id"] == "daily-news"
    recipe = body["recipe"]
    assert recipe["revision"] == 1 and recipe["workspace_id"] == catalog.workspace
    assert recipe["schedule_config"]["webhook_id"] and recipe["schedule_config"]["webhook_secret"] == "news-hook-secret"
    assert recipe["execution_config"]["mode"] == "parallel" and recipe["execution_config"]["total_timeout"] == 600
    assert recipe["use_count"] == 0 and recipe["quality_score"] is None and recipe["created_by"] == "user-1"

    got = await catalog.request("GET", f"{BASE}/daily-news")
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    steps = got.json()["steps"]
    assert [s["step_id"] for s in steps] == ["fetch", "summarise"]
    assert steps[0]["agent"] == {
        "id": agent["id"],
        "number": agent["number"],
        "name": "Reader",
        "model": "echo-1",
        "provider": "offline",
        "tool_count": 2,
        "status": "active",
    }

    updated = await catalog.request(
        "PUT",
        f"{BASE}/daily-news",
        json={"name": "Daily news", "schedule_config": {"type": "trigger", "trigger_config": {"event": "x"}}},
    )
    assert updated.status_code == 200, updated.text
    new = updated.json()["recipe"]
    assert new["name"] == "Daily news" and new["revision"] == 2
    # the webhook id survives a schedule change between webhook kinds
    assert new["schedule_config"]["webhook_id"] == recipe["schedule_config"]["webhook_id"]
    manual = (await catalog.request("PUT", f"{BASE}/daily-news", json={"schedule_config": {"type": "manual"}})).json()
    assert "webhook_id" not in manual["recipe"]["schedule_config"]

    deleted = await catalog.request("DELETE", f"{BASE}/daily-news")
    assert deleted.status_code == 200 and deleted.json()["recipe_id"] == "daily-news"
    for method in ("GET", "PUT", "DELETE"):
        response = await catalog.request(method, f"{BASE}/daily-news", json={"name": "x"})
        assert response.status_code == 404, method
    # the template id is free again
    again = await catalog.request("POST", BASE, json=catalog.body(agent["id"], template_id="daily-news"))
    assert again.status_code == 201 and again.json()["recipe"]["id"] != recipe["id"]


async def test_duplicate_template_id_is_409_only_within_a_workspace(catalog):
    recipe = await catalog.recipe()
    agent_id = recipe["steps"][0]["agent_id"]
    response = await catalog.request("POST", BASE, json=catalog.body(agent_id, template_id=recipe["template_id"]))
    assert response.status_code == 409 and response.json()["code"] == "duplicate_template_id"
    other = unique("ws")
    other_agent = await catalog.agent(workspace=other)
    elsewhere = await catalog.request(
        "POST", BASE, workspace=other, json=catalog.body(other_agent["id"], template_id=recipe["template_id"])
    )
    assert elsewhere.status_code == 201


def _invalid_bodies(agent_id: str, foreign_agent: str) -> list[tuple[dict, str]]:
    step = {"step_id": "a", "order": 1, "agent_id": agent_id}
    return [
        ({"template_id": None}, "template_id"),
        ({"name": ""}, "name"),
        ({"steps": []}, "steps"),
        ({"template_definition": "text"}, "template_definition"),
        ({"template_id": "has space"}, "template_id"),
        ({"steps": [step, {**step, "order": 2}]}, "steps[1].step_id"),
        ({"steps": [{**step, "order": "first"}]}, "steps[0].order"),
        ({"steps": [{**step, "order": 1.5}]}, "steps[0].order"),
        ({"steps": [{**step, "error_handling": "explode"}]}, "steps[0].error_handling"),
        ({"steps": [{**step, "depends_on": ["ghost"]}]}, "steps[0].depends_on[0]"),
        ({"steps": [{**step, "depends_on": ["a"]}]}, "steps[0].depends_on[0]"),
        (
            {
                "steps": [
                    {**step, "depends_on": ["c"]},
                    {"step_id": "b", "order": 2, "agent_id": agent_id, "depends_on": ["a"]},
                    {"step_id": "c", "order": 3, "agent_id": agent_id, "depends_on": ["b"]},
                ]
            },
            "steps[0].depends_on",
        ),
        (
            {
                "steps": [
                    step,
                    {"step_id": "b", "order": 2, "agent_id": agent_id},
                    {"step_id": "c", "order": 3, "agent_id": "nope"},
                ]
            },
            "steps[2].agent_id",
        ),
        ({"steps": [{**step, "agent_id": foreign_agent}]}, "steps[0].agent_id"),
        ({"steps": [{**step, "agent_id": ""}]}, "steps[0].agent_id"),
        ({"execution_config": {"mode": "chaotic"}}, "execution_config.mode"),
        ({"execution_config": {"retry_delay": -1}}, "execution_config.retry_delay"),
        ({"execution_config": {"total_timeout": -0.5}}, "execution_config.total_timeout"),
        ({"execution_config": {"max_cost_usd": -3}}, "execution_config.max_cost_usd"),
        ({"schedule_config": {"type": "hourly"}}, "schedule_config.type"),
        ({"schedule_config": {"type": "cron"}}, "schedule_config.cron_expression"),
        ({"schedule_config": {"type": "cron", "cron_expression": "61 * * * *"}}, "schedule_config.cron_expression"),
        ({"schedule_config": {"type": "cron", "cron_expression": "* * * * * *"}}, "schedule_config.cron_expression"),
        ({"schedule_config": {"type": "trigger"}}, "schedule_config.trigger_config"),
        ({"schedule_config": {"type": "manual", "timezone": "Mars/Olympus"}}, "schedule_config.timezone"),
        ({"template_definition": {"bad": "nul\x00char"}}, "template_definition.bad"),
        ({"inputs": {"topic": {"type": "string", "default": "\x00"}}}, "inputs.topic.default"),
    ]


async def test_every_validation_failure_is_a_422_naming_its_field(catalog):
    agent = await catalog.agent()
    foreign = await catalog.agent(workspace=unique("ws"))
    existing = await catalog.recipe(agent_id=agent["id"])
    for change, field in _invalid_bodies(agent["id"], foreign["id"]):
        body = catalog.body(agent["id"], **change)
        response = await catalog.request("POST", BASE, json=body)
        assert response.status_code == 422, (change, response.text)
        payload = response.json()
        assert payload["code"] == "validation_error"
        assert field in [e["field"] for e in payload["errors"]], (change, payload)
        if field == "template_id" or "template_id" in change:
            continue
        # the same rule on update, only for the part that changed
        update = {k: v for k, v in change.items()}
        response = await catalog.request("PUT", f"{BASE}/{existing['template_id']}", json=update)
        assert response.status_code == 422, (change, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (change, response.json())
    # nothing was written by the refused updates
    history = (await catalog.request("GET", f"{BASE}/{existing['template_id']}/history")).json()
    assert len(history["revisions"]) == 1
    for field in ("name", "steps", "is_public"):
        response = await catalog.request("PUT", f"{BASE}/{existing['template_id']}", json={field: None})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


async def test_valid_cron_and_dag_are_accepted(catalog):
    agent = await catalog.agent()
    steps = [
        {"step_id": "a", "order": 1, "agent_id": agent["id"]},
        {"step_id": "b", "order": 2, "agent_id": agent["id"], "depends_on": ["a"], "error_handling": "skip"},
        {"step_id": "c", "order": 2, "agent_id": agent["id"], "depends_on": ["a"], "error_handling": "continue"},
        {"step_id": "d", "order": 3, "agent_id": agent["id"], "depends_on": ["b", "c"]},
    ]
    recipe = await catalog.recipe(
        agent_id=agent["id"],
        steps=steps,
        schedule_config={"type": "cron", "cron_expression": "*/15 9-17 * * 1-5", "timezone": "Europe/Paris"},
    )
    assert recipe["schedule_config"]["cron_expression"] == "*/15 9-17 * * 1-5"
    assert "webhook_id" not in recipe["schedule_config"]


async def test_system_recipes_cannot_be_changed_or_deleted(catalog):
    agent = await catalog.agent()
    body = catalog.body(agent["id"], is_system=True)
    refused = await catalog.request("POST", BASE, json=body)
    assert refused.status_code == 403
    internal = catalog.headers(auth_type="internal")
    created = await catalog.http.post(BASE, json=body, headers=internal)
    assert created.status_code == 201 and created.json()["recipe"]["is_system"] is True
    path = f"{BASE}/{body['template_id']}"
    for method in ("PUT", "DELETE"):
        response = await catalog.request(method, path, json={"name": "mine now"})
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "system_recipe"
    assert (await catalog.request("GET", path)).json()["name"] == body["name"]


async def test_if_match_gives_optimistic_concurrency(catalog):
    recipe = await catalog.recipe()
    path = f"{BASE}/{recipe['template_id']}"
    ok = await catalog.request("PUT", path, json={"name": "v2"}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    stale = await catalog.request("PUT", path, json={"name": "v3"}, headers={"If-Match": "1"})
    assert stale.status_code == 409 and stale.json()["code"] == "revision_conflict"
    assert stale.json()["current_revision"] == 2
    bad = await catalog.request("PUT", path, json={"name": "v3"}, headers={"If-Match": "abc"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "If-Match"
    assert (await catalog.request("GET", path)).json()["name"] == "v2"


async def test_twenty_concurrent_puts_with_one_revision_one_wins(catalog):
    recipe = await catalog.recipe()
    path = f"{BASE}/{recipe['template_id']}"
    responses = await asyncio.gather(
        *(catalog.request("PUT", path, json={"name": f"writer {i}"}, headers={"If-Match": "1"}) for i in range(20))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1 and codes.count(409) == 19, codes
    winner = next(r for r in responses if r.status_code == 200).json()["recipe"]["name"]
    history = (await catalog.request("GET", f"{path}/history")).json()["revisions"]
    assert [h["revision"] for h in history] == [1, 2]
    assert (await catalog.request("GET", path)).json()["name"] == winner


async def test_concurrent_puts_without_if_match_all_apply(catalog):
    recipe = await catalog.recipe()
    path = f"{BASE}/{recipe['template_id']}"
    responses = await asyncio.gather(*(catalog.request("PUT", path, json={"tags": [f"t{i}"]}) for i in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    history = (await catalog.request("GET", f"{path}/history")).json()["revisions"]
    assert [h["revision"] for h in history] == [1, 2, 3, 4, 5, 6]


async def test_history_lists_every_revision_and_shows_a_past_one(catalog):
    recipe = await catalog.recipe(name="First")
    path = f"{BASE}/{recipe['template_id']}"
    await catalog.request("PUT", path, json={"name": "Second"}, headers=catalog.headers(user_id="editor"))
    await catalog.request("PUT", path, json={"tags": ["ops"], "description": "new words"})
    unchanged = await catalog.request("PUT", path, json={"tags": ["ops"]})
    assert unchanged.json()["recipe"]["revision"] == 3
    history = (await catalog.request("GET", f"{path}/history")).json()
    revisions = history["revisions"]
    assert [(h["revision"], h["event_type"]) for h in revisions] == [
        (1, "RecipeCreated"),
        (2, "RecipeUpdated"),
        (3, "RecipeUpdated"),
    ]
    assert revisions[1]["changed_fields"] == ["name"]
    assert sorted(revisions[2]["changed_fields"]) == ["description", "tags"]
    assert revisions[1]["actor"]["user_id"] == "editor" and revisions[0]["actor"]["user_id"] == "user-1"
    assert all(h["occurred_at"] for h in revisions)
    past = (await catalog.request("GET", f"{path}/history", params={"revision": 1})).json()
    assert past["recipe"]["name"] == "First" and past["recipe"]["revision"] == 1
    assert (await catalog.request("GET", f"{path}/history", params={"revision": 9})).status_code == 404
    assert (await catalog.request("GET", f"{path}/history", params={"revision": 0})).status_code == 422


async def test_list_filters_search_sort_and_paging(catalog):
    agent = await catalog.agent()
    made = {}
    for name, description, public, featured in [
        ("Alpha Report", "weekly numbers", True, False),
        ("beta digest", "Summarises the ALPHA channel", True, True),
        ("Gamma", "private notes", False, False),
        ("delta", "something else", True, True),
    ]:
        made[name] = await catalog.recipe(
            agent_id=agent["id"], name=name, description=description, is_public=public, is_featured=featured
        )
    for _ in range(3):
        await catalog.request("POST", f"{BASE}/{made['delta']['template_id']}/use")
    await catalog.request("POST", f"{BASE}/{made['beta digest']['template_id']}/use")

    async def names(**params):
        response = await catalog.request("GET", BASE, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        return [r["name"] for r in body["items"]], body["total"]

    assert (await names(sort_by="name")) == (["Alpha Report", "beta digest", "delta"], 3)
    assert (await names(is_public="false")) == (["Gamma"], 1)
    assert (await names(search="alpha", sort_by="name")) == (["Alpha Report", "beta digest"], 2)
    assert (await names(search="ALPHA channel")) == (["beta digest"], 1)
    assert (await names(search="100%")) == ([], 0)
    assert (await names(is_featured="true", sort_by="name")) == (["beta digest", "delta"], 2)
    assert (await names(sort_by="use_count"))[0][:2] == ["delta", "beta digest"]
    assert (await names(sort_by="popularity"))[0][:2] == ["delta", "beta digest"]
    assert (await names(sort_by="created_at"))[0] == ["delta", "beta digest", "Alpha Report"]
    assert (await names(sort_by="average_rating"))[1] == 3
    assert (await names(sort_by="name", skip=1, limit=1)) == (["beta digest"], 3)
    assert (await names(sort_by="name", skip=5)) == ([], 3)
    for params in ({"limit": 0}, {"limit": 101}, {"skip": -1}, {"sort_by": "random"}, {"is_public": "maybe"}):
        response = await catalog.request("GET", BASE, params=params)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == next(iter(params))


async def test_use_categories_featured_and_dashboard(catalog):
    agent = await catalog.agent()
    a = await catalog.recipe(agent_id=agent["id"], tags=["Research", "x"], is_featured=True)
    await catalog.recipe(agent_id=agent["id"], tags=["Research"])
    await catalog.recipe(agent_id=agent["id"], tags=[])
    used = await catalog.request("POST", f"{BASE}/{a['template_id']}/use")
    assert used.status_code == 200 and used.json()["use_count"] == 1 and used.json()["last_used_at"]
    assert (await catalog.request("POST", f"{BASE}/nope/use")).status_code == 404

    categories = (await catalog.request("GET", f"{BASE}/categories/list")).json()["categories"]
    assert categories == [{"name": "Research", "count": 2}, {"name": "General", "count": 1}]

    featured = (await catalog.request("GET", f"{BASE}/featured/list", params={"limit": 5})).json()
    assert featured["total"] == 1 and featured["items"][0]["template_id"] == a["template_id"]

    dashboard = (await catalog.request("GET", f"{BASE}/stats/dashboard")).json()
    assert dashboard["overview"]["total_recipes"] == 3
    assert dashboard["overview"]["total_executions"] == 0
    assert dashboard["status_breakdown"] == {"completed": 0, "failed": 0, "running": 0, "pending": 0, "cancelled": 0}
    assert dashboard["top_recipes"][0]["template_id"] == a["template_id"]
    assert len(dashboard["top_recipes"]) == 3


async def test_recipes_are_isolated_by_workspace(catalog):
    recipe = await catalog.recipe(is_featured=True)
    other = unique("ws")
    path = f"{BASE}/{recipe['template_id']}"
    for method, route, body in [
        ("GET", path, None),
        ("PUT", path, {"name": "stolen"}),
        ("DELETE", path, None),
        ("POST", f"{path}/use", None),
        ("GET", f"{path}/history", None),
    ]:
        response = await catalog.request(method, route, workspace=other, json=body)
        assert response.status_code == 404, (method, route, response.text)
    assert (await catalog.request("GET", BASE, workspace=other)).json()["total"] == 0
    assert (await catalog.request("GET", f"{BASE}/featured/list", workspace=other)).json()["total"] == 0
    assert (await catalog.request("GET", f"{BASE}/categories/list", workspace=other)).json()["categories"] == []
    dashboard = (await catalog.request("GET", f"{BASE}/stats/dashboard", workspace=other)).json()
    assert dashboard["overview"]["total_recipes"] == 0 and dashboard["top_recipes"] == []
    mine = await catalog.request("GET", path)
    assert mine.status_code == 200 and mine.json()["revision"] == 1 and mine.json()["use_count"] == 0


async def test_nul_in_path_or_query_is_refused_not_a_crash(catalog):
    assert (await catalog.request("GET", f"{BASE}/a%00b")).status_code == 422
    assert (await catalog.request("GET", BASE, params={"search": "a\x00"})).status_code == 422
    assert Caller("w", "u").actor.user_id == "u"

"""Agent numbers (the origin platform's integer agent ids) and the origin's step and execution fields."""

from __future__ import annotations

import pytest

from sous_local.testing import unique

pytestmark = pytest.mark.integration

BASE = "/api/workflow-recipes"


def _errors(response):
    assert response.status_code == 422, response.text
    return {e["field"] for e in response.json()["errors"]}


async def test_numbers_are_per_workspace_stable_and_never_reused(catalog):
    ws, other = unique("ws"), unique("ws")
    first = await catalog.agent(workspace=ws)
    second = await catalog.agent(workspace=ws)
    elsewhere = await catalog.agent(workspace=other)
    assert (first["number"], second["number"], elsewhere["number"]) == (1, 2, 1)
    got = await catalog.request("GET", "/api/agents/2", workspace=ws)
    assert got.status_code == 200 and got.json()["id"] == second["id"] and got.json()["number"] == 2
    assert (await catalog.request("GET", "/api/agents/2", workspace=other)).status_code == 404
    renamed = await catalog.request("PUT", "/api/agents/1", workspace=ws, json={"name": "renamed"})
    assert renamed.status_code == 200 and renamed.json()["id"] == first["id"] and renamed.json()["number"] == 1
    deleted = await catalog.request("DELETE", "/api/agents/2", workspace=ws)
    assert deleted.status_code == 200 and deleted.json()["agent_id"] == second["id"]
    third = await catalog.agent(workspace=ws)
    assert third["number"] == 3
    listed = (await catalog.request("GET", "/api/agents", workspace=ws)).json()["items"]
    assert {a["id"]: a["number"] for a in listed} == {first["id"]: 1, third["id"]: 3}


async def test_a_step_may_name_its_agent_by_number(catalog):
    ws = unique("ws")
    agent = await catalog.agent(workspace=ws)
    body = catalog.body(agent["id"])
    body["steps"][0]["agent_id"] = agent["number"]
    body["steps"][1]["agent_id"] = str(agent["number"])
    created = await catalog.request("POST", BASE, workspace=ws, json=body)
    assert created.status_code == 201, created.text
    steps = created.json()["recipe"]["steps"]
    assert [s["agent_id"] for s in steps] == [agent["id"], agent["id"]]
    assert [s["agent_number"] for s in steps] == [1, 1]
    shown = (await catalog.request("GET", f"{BASE}/{body['template_id']}", workspace=ws)).json()
    assert shown["steps"][0]["agent"]["number"] == 1
    # the agent is in use under its number too
    assert (await catalog.request("DELETE", "/api/agents/1", workspace=ws)).status_code == 409
    unknown = catalog.body(agent["id"])
    unknown["steps"][0]["agent_id"] = 99
    assert _errors(await catalog.request("POST", BASE, workspace=ws, json=unknown)) == {"steps[0].agent_id"}
    # a number of another workspace's agent does not resolve here
    assert _errors(await catalog.request("POST", BASE, workspace=unique("ws"), json=body)) >= {"steps[0].agent_id"}
    for bad in (0, -3, True):
        wrong = catalog.body(agent["id"])
        wrong["steps"][0]["agent_id"] = bad
        assert _errors(await catalog.request("POST", BASE, workspace=ws, json=wrong)) == {"steps[0].agent_id"}


async def test_origin_step_fields_are_kept_or_refused(catalog):
    ws = unique("ws")
    agent = await catalog.agent(workspace=ws)
    body = catalog.body(agent["id"], execution_config={"memory_isolation": "shared", "timeout_per_step": 45})
    body["steps"][0]["pass_to"] = "summarise"
    body["steps"][0]["pre_exec"] = ""
    created = await catalog.request("POST", BASE, workspace=ws, json=body)
    assert created.status_code == 201, created.text
    recipe = created.json()["recipe"]
    assert recipe["steps"][0]["pass_to"] == "summarise" and recipe["execution_config"]["memory_isolation"] == "shared"
    for step_field, value, where in [
        ("pass_to", "nowhere", "steps[0].pass_to"),
        ("pass_to", "fetch", "steps[0].pass_to"),
        ("pre_exec", "echo hi", "steps[0].pre_exec"),
    ]:
        bad = catalog.body(agent["id"])
        bad["steps"][0][step_field] = value
        assert _errors(await catalog.request("POST", BASE, workspace=ws, json=bad)) == {where}
    backwards = catalog.body(agent["id"])
    backwards["steps"][1]["pass_to"] = "fetch"
    assert _errors(await catalog.request("POST", BASE, workspace=ws, json=backwards)) == {"steps[1].pass_to"}
    isolated = catalog.body(agent["id"], execution_config={"memory_isolation": "isolated"})
    assert _errors(await catalog.request("POST", BASE, workspace=ws, json=isolated)) == {
        "execution_config.memory_isolation"
    }

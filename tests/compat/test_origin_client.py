"""Each call of the origin platform's web client, with the path, query and body it sends, through the gateway.

Bodies are built the way the client's form and hooks build them (`use-recipe-form`'s payload, the recipes
tab's cook and share buttons, the marketplace hooks); every response field the client then reads is checked.
docs/compatibility.md lists each call and its status.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from sous_local.testing import eventually

from .conftest import Origin, clerk_session_token

pytestmark = pytest.mark.e2e

RECIPES = "/api/workflow-recipes"


def form_payload(name: str, agent_number: int, **config: Any) -> dict[str, Any]:
    """What the create-recipe form posts: a slug id, parseInt'ed agent ids, seconds, the origin's spellings."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + "-" + uuid.uuid4().hex[:8]
    steps = [
        {
            "step_id": "step-1",
            "order": 1,
            "agent_id": agent_number,
            "prompt_template": "Research {topic} [[tool:calculator]]",
            "pass_to": "step-2",
            "error_handling": "stop",
        },
        {
            "step_id": "step-2",
            "order": 2,
            "agent_id": agent_number,
            "prompt_template": "Write up",
            "error_handling": "skip",
        },
    ]
    return {
        "template_id": slug,
        "name": name,
        "description": "made in the origin's form",
        "template_definition": {"steps": steps, "version": "1.0"},
        "steps": steps,
        "inputs": {"topic": {"type": "string", "required": True, "description": "what to research"}},
        "execution_config": {
            "mode": "sequential",
            "max_retries": 1,
            "per_step_timeout": 45,
            "total_timeout": 600,
            "auto_learning": True,
            "memory_isolation": "shared",
            **config,
        },
        "schedule_config": {"type": "manual"},
        "tags": [],
        "is_public": True,
    }


async def make_agent(client: Origin, name: str = "Researcher") -> dict[str, Any]:
    """`createAgent`: POST /api/agents/ (trailing slash)."""
    body = {
        "name": name,
        "description": "looks things up",
        "model_config": {"provider": "offline", "model_id": "sous-offline-1"},
        "skills": ["calculator"],
        "configuration": {"max_iterations": 4},
    }
    created: dict[str, Any] = await client.ok("POST", "/api/agents/", body, status=201)
    return created


async def picker_agents(client: Origin) -> list[dict[str, Any]]:
    """`getAgents(0, 100)`, as the step builder reads it: an array, or `.agents`."""
    data = await client.ok("GET", "/api/agents/?skip=0&limit=100")
    agents = data if isinstance(data, list) else data["agents"]
    assert isinstance(agents, list)
    return agents


async def wait_until_cookable(client: Origin, template_id: str) -> None:
    async def known() -> bool:
        return (await client.call("GET", f"{RECIPES}/{template_id}/executions?limit=5")).status_code == 200

    await eventually(known, what="the executor to know the recipe")


async def test_agent_picker_gives_integer_ids_the_form_parses(origin):
    client = origin()
    created = await make_agent(client)
    # created through the origin's path, the agent comes back as the origin knows it: its number as `id`
    assert created["id"] == created["number"] and isinstance(created["id"], int) and created["uuid"]
    assert created["name"] == "Researcher"
    agents = await picker_agents(client)
    [agent] = [a for a in agents if a["name"] == "Researcher"]
    # the picker: `String(agent.id)` as the option value, `parseInt` on submit, `status === 'active'`
    assert isinstance(agent["id"], int) and int(str(agent["id"])) == created["number"]
    assert agent["status"] == "active" and agent["model_config"]["model_id"] == "sous-offline-1"
    assert agent["skills"] == ["calculator"]
    # `getAgent(id)` with that integer
    fetched = await client.ok("GET", f"/api/agents/{agent['id']}")
    assert fetched["name"] == "Researcher" and fetched["number"] == agent["id"]
    # `updateAgent` and `deleteAgent` take it too
    renamed = await client.ok("PUT", f"/api/agents/{agent['id']}", {"description": "renamed"})
    assert renamed["description"] == "renamed"
    deleted = await client.ok("DELETE", f"/api/agents/{agent['id']}")
    assert deleted["agent_id"] == created["uuid"]


async def test_recipe_form_create_list_edit_and_delete(origin):
    client = origin()
    agent = (await picker_agents(client), await make_agent(client))[1]
    number = agent["number"]
    payload = form_payload("Morning Brief", number)
    created = await client.ok("POST", RECIPES, payload, status=201)
    # the form reads `result.recipe.schedule_config.webhook_id` (absent for a manual schedule)
    assert created["recipe"]["schedule_config"]["type"] == "manual"
    assert created["recipe"]["execution_config"]["timeout_per_step"] == 45  # per_step_timeout was not lost

    # `listWorkflowRecipes({search, limit: 100})`: the tab reads items[] and each card's fields
    page = await client.ok("GET", f"{RECIPES}?search=morning&limit=100")
    [recipe] = [r for r in page["items"] if r["template_id"] == payload["template_id"]]
    for key in ("id", "name", "description", "use_count", "is_system", "required_tools", "learning_data"):
        assert key in recipe, key
    assert "quality_score" in recipe
    # the edit form reads these back and sends them again unchanged
    assert [s["agent_id"] for s in recipe["steps"]] == [number, number]
    assert recipe["steps"][0]["pass_to"] == "step-2" and recipe["steps"][1]["error_handling"] in ("skip", "continue")
    config = recipe["execution_config"]
    assert (config["per_step_timeout"], config["total_timeout"], config["auto_learning"]) == (45, 600, True)
    assert config["memory_isolation"] == "shared" and config["mode"] == "sequential"

    # `getWorkflowRecipeById`, then `updateWorkflowRecipe` with the form's payload again
    shown = await client.ok("GET", f"{RECIPES}/{payload['template_id']}")
    assert shown["steps"][0]["agent_id"] == number
    edited = form_payload("Morning Brief", int(str(shown["steps"][0]["agent_id"])), per_step_timeout=60)
    edited.pop("template_id")
    updated = await client.ok("PUT", f"{RECIPES}/{payload['template_id']}", edited)
    assert updated["recipe"]["execution_config"]["per_step_timeout"] == 60

    # what the form may send that Sous refuses, by name (never dropped)
    hooked = form_payload("Hooked", number)
    hooked["steps"][0]["pre_exec"] = "echo warm up"
    refused = await client.call("POST", RECIPES, hooked)
    assert refused.status_code == 422 and "steps[0].pre_exec" in {e["field"] for e in refused.json()["errors"]}
    isolated = form_payload("Isolated", number, memory_isolation="isolated")
    refused = await client.call("POST", RECIPES, isolated)
    assert refused.status_code == 422
    clash = form_payload("Clash", number, timeout_per_step=30)
    refused = await client.call("POST", RECIPES, clash)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "execution_config.per_step_timeout"

    # `getFeaturedRecipes`, `getRecipeCategories`, `recordRecipeUsage`, `deleteWorkflowRecipe`
    assert "items" in await client.ok("GET", f"{RECIPES}/featured/list?limit=6")
    assert "categories" in await client.ok("GET", f"{RECIPES}/categories/list")
    used = await client.ok("POST", f"{RECIPES}/{payload['template_id']}/use")
    assert used["use_count"] == 1
    gone = await client.ok("DELETE", f"{RECIPES}/{payload['template_id']}")
    assert gone["recipe_id"]


async def test_cook_watch_steps_logs_suggestions_and_active_panel(origin):
    client = origin()
    number = (await make_agent(client))["number"]
    payload = form_payload("Cooked", number)
    payload["steps"].append(
        {
            "step_id": "step-3",
            "order": 3,
            "agent_id": number,
            "prompt_template": f"Broken [[fail:500:50:{client.workspace}]]",
            "error_handling": "skip",
        }
    )
    await client.ok("POST", RECIPES, payload, status=201)
    template_id = payload["template_id"]
    await wait_until_cookable(client, template_id)

    # the Cook button: `{input_data: {}}` although `topic` is required without a default
    started = await client.ok("POST", f"{RECIPES}/{template_id}/execute", {"input_data": {}}, status=202)
    execution_id = started["recipe_execution_id"]
    assert started["status"] == "started" and started["total_steps"] == 3

    async def finished() -> dict[str, Any] | None:
        view = await client.ok("GET", f"{RECIPES}/{template_id}/executions/{execution_id}")
        return view if view["status"] in ("completed", "failed") else None

    view = await eventually(finished, timeout_s=90, what="the run to finish")
    # the Execution Kitchen polls until `completed`/`failed` and titles the run from these
    assert view["execution_id"] == execution_id and view["recipe_name"] == "Cooked"
    assert view["input_data"]["topic"] == ""
    assert isinstance(view["current_step"], int) and view["total_steps"] == 3
    results = {r["order"]: r for r in view["step_results"]}
    first = results[1]
    # recipe-step-progress reads these; status stays Sous's `completed` (deliberately)
    assert first["status"] == "completed" and first["agent_name"] == "Researcher"
    assert isinstance(first["output"], str) and isinstance(first["duration_ms"], int | float)
    assert first["retries"] == 0 and first["attempt"] == 1
    assert first["tool_calls"] and first["tool_calls"][0]["action"] == "calculator"
    assert first["tool_calls"][0]["action_name"] == "calculator"
    assert results[3]["status"] == "failed" and results[3]["error"]
    # "load full logs": the step's `log_url`, as `getRecipeStepFullLogs` builds it
    assert first["log_url"] == f"{RECIPES}/{template_id}/executions/{execution_id}/steps/1/logs"
    logs = await client.ok("GET", f"{RECIPES}/{template_id}/executions/{execution_id}/steps/1/logs")
    assert logs["log_data"]["agent_output"] == first["output"]
    assert logs["log_data"]["tool_calls"][0]["action"] == "calculator"
    missing = await client.call("GET", f"{RECIPES}/{template_id}/executions/{execution_id}/steps/9/logs")
    assert missing.status_code == 404

    # `getRecipeExecutions(id, {limit: 5})`
    runs = await client.ok("GET", f"{RECIPES}/{template_id}/executions?limit=5")
    assert runs["total"] == 1 and runs["items"][0]["execution_id"] == execution_id

    # `getRecipeSuggestions`: the panel reads description/target_step and patterns' step
    async def learned() -> dict[str, Any] | None:
        data = await client.ok("GET", f"{RECIPES}/{template_id}/suggestions")
        return data if data["analysis_count"] >= 1 else None

    data = await eventually(learned, what="automatic learning")
    assert data["recipe_id"] == template_id and "last_analyzed_at" in data and "performance_metrics" in data
    broken = [s for s in data["suggestions"] if s.get("step_id") == "step-3"]
    assert broken and broken[0]["description"] == broken[0]["message"] and broken[0]["target_step"] == "step-3"
    assert all(s["priority"] in ("high", "medium", "low") and s["type"] for s in data["suggestions"])
    failure = [p for p in data["patterns"] if p.get("step_id") == "step-3"]
    assert failure and failure[0]["step"] == "step-3" and failure[0]["description"]

    # the active-workflows panel: a run held by a slow step
    slow = form_payload("Slow", number)
    slow["steps"] = [{**slow["steps"][1], "prompt_template": "Slowly [[latency:30000]]"}]
    slow["inputs"] = {}
    await client.ok("POST", RECIPES, slow, status=201)
    await wait_until_cookable(client, slow["template_id"])
    held = await client.ok("POST", f"{RECIPES}/{slow['template_id']}/execute", {"input_data": {}}, status=202)

    async def running() -> dict[str, Any] | None:
        panel = await client.ok("GET", "/api/workflows/active")
        items = [w for w in panel["active_workflows"] if w["id"] == held["recipe_execution_id"]]
        return panel if items and items[0]["current_execution"]["status"] == "running" else None

    panel = await eventually(running, what="the slow run to be running")
    assert isinstance(panel["system_load"], int | float) and panel["total_active"] >= 1 and panel["last_updated"]
    [item] = [w for w in panel["active_workflows"] if w["id"] == held["recipe_execution_id"]]
    assert item["name"] == "Slow" and isinstance(item["description"], str) and item["created_at"]
    current = item["current_execution"]
    assert isinstance(current["progress"], int | float) and isinstance(current["current_step"], str)
    assert "estimated_completion" in current
    metrics = item["metrics"]
    assert {"total_executions", "success_rate", "avg_duration", "last_execution"} <= set(metrics)
    assert isinstance(item["agents"], list)
    cancelled = await client.call(
        "POST", f"{RECIPES}/{slow['template_id']}/executions/{held['recipe_execution_id']}/cancel"
    )
    assert cancelled.status_code == 202


async def test_share_moderate_browse_install_and_withdraw(origin):
    creator = origin()
    moderator = origin(role="org:moderator")
    installer = origin()
    number = (await make_agent(creator, name=f"Sharer {uuid.uuid4().hex[:4]}"))["number"]
    payload = form_payload(f"Shared {uuid.uuid4().hex[:6]}", number)
    await creator.ok("POST", RECIPES, payload, status=201)

    # the Share button: `submitRecipeToMarketplace({recipe_id, category, icon})`; reads `auto_approved`
    async def submitted() -> dict[str, Any] | None:
        body = {"recipe_id": payload["template_id"], "category": "Research", "icon": "🍳"}
        response = await creator.call("POST", f"{RECIPES}/submit", body)
        return response.json() if response.status_code == 200 else None

    submission = await eventually(submitted, what="the marketplace to know the recipe")
    assert submission["auto_approved"] is False and submission["success"] is True
    item_id = submission["item_id"]

    # moderation through the origin's path
    approved = await moderator.ok("POST", f"/api/marketplace/items/{item_id}/approve")
    assert approved["status"] == "approved"

    # `getMarketplaceItems({type: 'recipe', ...})`: ids to install, the card's fields
    page = await installer.ok("GET", "/api/marketplace/items?type=recipe&category=Research&limit=50")
    [item] = [i for i in page["items"] if i["id"] == item_id]
    assert (item["type"], item["name"], item["category"], item["icon"]) == ("recipe", payload["name"], "Research", "🍳")
    for key in ("description", "creator_name", "tags", "install_count", "is_featured", "version", "metadata"):
        assert key in item, key
    assert item["created_at"] and item["updated_at"]
    agents_only = await installer.ok("GET", "/api/marketplace/items?type=agent")
    assert agents_only["items"] == []
    detail = await installer.ok("GET", f"/api/marketplace/items/{item_id}")
    assert detail["id"] == item_id and detail["type"] == "recipe"

    # `installRecipeFromMarketplace(id)` and `installMarketplaceItem(id)`
    installed = await installer.ok("POST", f"{RECIPES}/install/{item_id}")
    assert installed["success"] is True and installed["message"]
    again = await installer.ok("POST", f"/api/marketplace/items/{item_id}/install")
    assert again["success"] is True

    # `DELETE /api/marketplace/items/{id}`: a real withdrawal
    withdrawn = await creator.ok("DELETE", f"/api/marketplace/items/{item_id}")
    assert withdrawn["status"] == "withdrawn"
    page = await installer.ok("GET", "/api/marketplace/items?type=recipe&limit=50")
    assert item_id not in [i["id"] for i in page["items"]]


async def test_clerk_sessions_without_an_organization_or_for_another_app_are_refused(gateway, signing_key):
    personal = clerk_session_token(signing_key, "user_personal", None)
    headers = {"Authorization": f"Bearer {personal}", "X-Workspace-ID": "org_x", "Content-Type": "application/json"}
    response = await gateway.get(RECIPES, headers=headers)
    assert (response.status_code, response.json()["code"]) == (403, "workspace_forbidden")
    foreign = clerk_session_token(signing_key, "user_1", "org_x", azp="https://elsewhere.test")
    response = await gateway.get(RECIPES, headers={**headers, "Authorization": f"Bearer {foreign}"})
    assert (response.status_code, response.json()["code"]) == (401, "invalid_authorized_party")

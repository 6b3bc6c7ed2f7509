"""The compatibility layer for the origin platform's web client: paths, request aliases, response views."""

from __future__ import annotations

import json

import pytest

from sous_gateway.compat import requests, responses
from sous_gateway.compat.paths import rewrite
from sous_service.errors import ApiError, InputInvalid

pytestmark = pytest.mark.unit


def test_sous_paths_are_not_rewritten() -> None:
    assert rewrite("GET", "/api/agents", "skip=0") is None
    assert rewrite("GET", "/api/workflow-recipes/r1/executions/e1", "") is None


def test_trailing_slash_is_the_same_resource_and_agents_get_the_origin_view() -> None:
    listing = rewrite("GET", "/api/agents/", "skip=0&limit=100")
    assert listing is not None and (listing.path, listing.query, listing.view) == (
        "/api/agents",
        "skip=0&limit=100",
        "agents",
    )
    other = rewrite("GET", "/api/workflow-recipes/", "")
    assert other is not None and (other.path, other.view) == ("/api/workflow-recipes", None)


def test_marketplace_items_map_to_listings() -> None:
    page = rewrite(
        "GET", "/api/marketplace/items", "type=recipe&category=General&search=x&featured=true&limit=5&offset=10"
    )
    assert page is not None and page.path == "/api/marketplace/listings" and page.view == "market_items"
    assert page.query == "category=General&search=x&limit=5&skip=10" and not page.empty_page
    agents_only = rewrite("GET", "/api/marketplace/items", "type=agent")
    assert agents_only is not None and agents_only.empty_page
    approve = rewrite("POST", "/api/marketplace/items/l1/approve", "")
    assert approve is not None and approve.path == "/api/marketplace/listings/l1/approve"
    install = rewrite("POST", "/api/marketplace/items/l1/install", "")
    assert install is not None and install.path == "/api/workflow-recipes/install/l1"
    withdraw = rewrite("DELETE", "/api/marketplace/items/l1", "")
    assert withdraw is not None and (withdraw.path, withdraw.view) == ("/api/marketplace/listings/l1", None)
    with pytest.raises(InputInvalid):
        rewrite("GET", "/api/marketplace/items", "colour=blue")


def test_step_logs_read_the_execution() -> None:
    logs = rewrite("GET", "/api/workflow-recipes/r1/executions/e1/steps/2/logs", "")
    assert logs is not None and logs.path == "/api/workflow-recipes/r1/executions/e1" and logs.step_order == 2
    with pytest.raises(ApiError):
        rewrite("GET", "/api/workflow-recipes/r1/executions/e1/steps/two/logs", "")


def test_per_step_timeout_is_an_explicit_alias() -> None:
    body = json.dumps({"execution_config": {"per_step_timeout": 45, "mode": "sequential"}}).encode()
    out = json.loads(requests.adapt("POST", "/api/workflow-recipes", body))
    assert out["execution_config"] == {"timeout_per_step": 45, "mode": "sequential"}
    same = json.dumps({"execution_config": {"per_step_timeout": 45, "timeout_per_step": 45}}).encode()
    assert json.loads(requests.adapt("PUT", "/api/workflow-recipes/{id}", same))["execution_config"] == {
        "timeout_per_step": 45
    }
    clash = json.dumps({"execution_config": {"per_step_timeout": 45, "timeout_per_step": 60}}).encode()
    with pytest.raises(InputInvalid) as caught:
        requests.adapt("POST", "/api/workflow-recipes", clash)
    assert caught.value.errors[0].field == "execution_config.per_step_timeout"
    # Anything else reaches the service as sent (which refuses unknown fields).
    other = json.dumps({"execution_config": {"bogus": 1}}).encode()
    assert json.loads(requests.adapt("POST", "/api/workflow-recipes", other)) == {"execution_config": {"bogus": 1}}


def test_step_results_carry_retries_action_and_log_url() -> None:
    execution = {
        "execution_id": "e1",
        "step_results": [
            {"order": 1, "status": "completed", "attempt": 3, "tool_calls": [{"name": "http_get", "result": "ok"}]},
            {"order": 2, "status": "pending", "attempt": 0, "tool_calls": []},
        ],
    }
    shaped = responses.execution_view(execution, "/api/workflow-recipes/r1/executions/e1")
    first, second = shaped["step_results"]
    assert first["retries"] == 2 and first["attempt"] == 3
    assert first["tool_calls"][0] == {
        "name": "http_get",
        "result": "ok",
        "action": "http_get",
        "action_name": "http_get",
    }
    assert first["log_url"] == "/api/workflow-recipes/r1/executions/e1/steps/1/logs"
    assert first["status"] == "completed" and "log_url" not in second
    logs = responses.step_logs(
        {"execution_id": "e1", "step_results": [{"order": 1, "step_id": "s1", "output": "full", "tool_calls": []}]}, 1
    )
    assert logs["log_data"]["agent_output"] == "full" and logs["step_id"] == "s1"
    with pytest.raises(ApiError):
        responses.step_logs({"step_results": []}, 4)


def test_suggestions_carry_description_and_target_step() -> None:
    shaped = responses.ROUTE_VIEWS[("GET", "/api/workflow-recipes/{id}/suggestions")](
        {
            "suggestions": [{"type": "prompt_rewrite", "message": "m", "step_id": "s1", "priority": "high"}],
            "patterns": [{"type": "slow_step", "description": "d", "step_id": "s1"}],
        },
        "",
    )
    assert shaped["suggestions"][0]["description"] == "m" and shaped["suggestions"][0]["message"] == "m"
    assert shaped["suggestions"][0]["target_step"] == "s1" and shaped["patterns"][0]["step"] == "s1"


def test_active_workflows_have_the_panel_shape() -> None:
    payload = {
        "active_workflows": [
            {
                "execution_id": "e1",
                "recipe_name": "R",
                "status": "running",
                "progress_percent": 50.0,
                "current_steps": ["b"],
            }
        ],
        "total_active": 1,
        "system_load": {"running": 1, "pending": 0, "limit": 4, "utilization": 0.25},
    }
    shaped = responses.active_workflows(payload)
    item = shaped["active_workflows"][0]
    assert item["id"] == "e1" and item["current_execution"]["status"] == "running"
    assert item["current_execution"]["progress"] == 50.0 and item["current_execution"]["current_step"] == "b"
    assert set(item["metrics"]) == {
        "total_executions",
        "successful_executions",
        "success_rate",
        "avg_duration",
        "last_execution",
    }
    assert shaped["system_load"] == 25.0 and shaped["capacity"]["limit"] == 4


def test_agents_listing_gives_the_picker_integer_ids() -> None:
    page = {"items": [{"id": "uuid-1", "number": 7, "name": "a"}], "total": 1}
    shaped = responses.agents_view(page)
    assert shaped["items"][0]["id"] == "uuid-1"
    assert shaped["agents"][0]["id"] == 7 and shaped["agents"][0]["uuid"] == "uuid-1"


def test_recipes_carry_per_step_timeout_and_steps_their_agent_number() -> None:
    steps = [{"step_id": "a", "agent_id": "uuid-1", "agent_number": 7}, {"step_id": "b", "agent_id": "uuid-2"}]
    shaped = responses.recipe_view({"recipe": {"execution_config": {"timeout_per_step": 30}, "steps": steps}})
    assert shaped["recipe"]["execution_config"]["per_step_timeout"] == 30
    first, second = shaped["recipe"]["steps"]
    assert (first["agent_id"], first["agent_uuid"]) == (7, "uuid-1") and second["agent_id"] == "uuid-2"


def test_market_items_have_the_origin_fields() -> None:
    page = {"items": [{"id": "l1", "name": "R", "creator_id": "u", "recipe": {"version": "2"}, "submitted_at": "t"}]}
    item = responses.market_items(page, empty=False)["items"][0]
    assert (item["id"], item["type"], item["creator_name"], item["version"]) == ("l1", "recipe", "u", "2")
    assert responses.market_items(page, empty=True)["items"] == []

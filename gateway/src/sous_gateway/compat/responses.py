"""Response spellings the origin client reads, added next to Sous's own (which stay as they are)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sous_service.errors import ApiError

Json = Any
EXECUTION = "/api/workflow-recipes/{id}/executions/{eid}"


def _step_result(step: dict[str, Any], execution_path: str | None) -> dict[str, Any]:
    """`retries` next to `attempt`, tool calls' `action`/`action_name` next to `name`, a `log_url`."""
    out = dict(step)
    attempt = step.get("attempt")
    if isinstance(attempt, int) and "retries" not in step:
        out["retries"] = max(attempt - 1, 0)
    calls = step.get("tool_calls")
    if isinstance(calls, list):
        out["tool_calls"] = [
            {**call, "action": call.get("name"), "action_name": call.get("name")}
            if isinstance(call, dict) and "name" in call
            else call
            for call in calls
        ]
    if execution_path and isinstance(step.get("order"), int) and step.get("status") not in ("pending", None):
        out.setdefault("log_url", f"{execution_path}/steps/{step['order']}/logs")
    return out


def execution_view(payload: Json, path: str) -> Json:
    if isinstance(payload, dict) and isinstance(payload.get("step_results"), list):
        payload["step_results"] = [_step_result(s, path) if isinstance(s, dict) else s for s in payload["step_results"]]
    return payload


def executions_page(payload: Json, path: str) -> Json:
    if isinstance(payload, dict) and isinstance(payload.get("items"), list):
        payload["items"] = [
            execution_view(item, f"{path}/{item.get('execution_id')}") if isinstance(item, dict) else item
            for item in payload["items"]
        ]
    return payload


def step_logs(payload: Json, order: int) -> Json:
    """One step's full record, as the origin's "load full logs" reads it (`log_data.agent_output`...)."""
    steps = payload.get("step_results") if isinstance(payload, dict) else None
    for step in steps or []:
        if isinstance(step, dict) and step.get("order") == order:
            shaped = _step_result(step, None)
            return {
                "execution_id": payload.get("execution_id"),
                "step_id": step.get("step_id"),
                "order": order,
                "log_data": {
                    "agent_output": step.get("output"),
                    "output_truncated": bool(step.get("output_truncated")),
                    "tool_calls": shaped.get("tool_calls") or [],
                    "error": step.get("error"),
                    "status": step.get("status"),
                    "tokens_used": step.get("tokens_used"),
                },
            }
    raise ApiError(404, "step_not_found", f"no step with order {order} in this execution")


def _learning(payload: Json) -> Json:
    """Suggestions: `description` next to `message`, `target_step` next to `step_id`; patterns: `step`."""
    if not isinstance(payload, dict):
        return payload
    suggestions = payload.get("suggestions")
    if isinstance(suggestions, list):
        payload["suggestions"] = [
            {**s, "description": s.get("message"), **({"target_step": s["step_id"]} if "step_id" in s else {})}
            if isinstance(s, dict)
            else s
            for s in suggestions
        ]
    patterns = payload.get("patterns")
    if isinstance(patterns, list):
        payload["patterns"] = [
            {**p, "step": p["step_id"]} if isinstance(p, dict) and "step_id" in p else p for p in patterns
        ]
    return payload


def _step(step: Json) -> Json:
    """A step written with an agent number is shown with that number (the edit form `parseInt`s it back)."""
    if isinstance(step, dict) and isinstance(step.get("agent_number"), int):
        return {**step, "agent_uuid": step.get("agent_id"), "agent_id": step["agent_number"]}
    return step


def _recipe(recipe: Json) -> Json:
    """execution_config's `per_step_timeout` next to `timeout_per_step` (the edit form reads it back)."""
    if not isinstance(recipe, dict):
        return recipe
    if isinstance(recipe.get("execution_config"), dict):
        config = recipe["execution_config"]
        if "timeout_per_step" in config:
            config["per_step_timeout"] = config["timeout_per_step"]
    if isinstance(recipe.get("steps"), list):
        recipe["steps"] = [_step(s) for s in recipe["steps"]]
    return recipe


def recipe_view(payload: Json) -> Json:
    if isinstance(payload, dict):
        if isinstance(payload.get("items"), list):
            payload["items"] = [_recipe(r) for r in payload["items"]]
        elif isinstance(payload.get("recipe"), dict):
            payload["recipe"] = _recipe(payload["recipe"])
        else:
            _recipe(payload)
    return payload


def _percent(value: Any) -> float:
    return round(100 * float(value), 1) if isinstance(value, int | float) else 0.0


def _active_item(run: dict[str, Any]) -> dict[str, Any]:
    """A running execution as the origin's active-workflows card reads it."""
    status = run.get("status")
    current = run.get("current_steps") or []
    succeeded = 1 if status == "completed" else 0
    return {
        **run,
        "id": run.get("execution_id"),
        "name": run.get("recipe_name") or run.get("recipe_id"),
        "description": run.get("recipe_name") or "",
        "agents": run.get("agents") or [],
        "current_execution": {
            "id": run.get("execution_id"),
            "status": status,
            "progress": run.get("progress_percent", 0.0),
            "current_step": ", ".join(current) if current else str(status or ""),
            "started_at": run.get("started_at"),
            "estimated_completion": None,
        },
        "metrics": {
            "total_executions": 1,
            "successful_executions": succeeded,
            "success_rate": 100 * succeeded,
            "avg_duration": "",
            "last_execution": run.get("started_at") or run.get("created_at"),
        },
        "recent_executions": [],
        "updated_at": run.get("completed_at") or run.get("started_at") or run.get("created_at"),
    }


def active_workflows(payload: Json) -> Json:
    """`system_load` as the percentage of the workspace's run limit in use; the counts move to `capacity`."""
    if not isinstance(payload, dict):
        return payload
    if isinstance(payload.get("active_workflows"), list):
        payload["active_workflows"] = [
            _active_item(r) if isinstance(r, dict) else r for r in payload["active_workflows"]
        ]
    load = payload.get("system_load")
    if isinstance(load, dict):
        payload["capacity"] = load
        payload["system_load"] = _percent(load.get("utilization"))
    return payload


def _origin_agent(agent: Json) -> Json:
    """The agent picker reads `id` as an integer (`parseInt`): the agent's number, with Sous's id as `uuid`."""
    if isinstance(agent, dict) and isinstance(agent.get("number"), int):
        return {**agent, "uuid": agent.get("id"), "id": agent["number"]}
    return agent


def agents_view(payload: Json) -> Json:
    """`/api/agents/`: the page plus `agents`, the list the origin's picker reads."""
    if isinstance(payload, dict) and isinstance(payload.get("items"), list):
        payload["agents"] = [_origin_agent(a) for a in payload["items"]]
        return payload
    return _origin_agent(payload)


def market_item(listing: Json) -> Json:
    """A listing as the origin's marketplace card reads it (`type`, `creator_name`, `metadata`, ...)."""
    if not isinstance(listing, dict):
        return listing
    recipe: dict[str, Any] = listing["recipe"] if isinstance(listing.get("recipe"), dict) else {}
    return {
        **listing,
        "type": "recipe",
        "creator_name": listing.get("creator_id"),
        "is_featured": False,
        "version": recipe.get("version") or "1.0.0",
        "metadata": {"recipe": recipe, "agents": listing.get("agents") or []},
        "created_at": listing.get("submitted_at"),
        "updated_at": listing.get("published_at") or listing.get("submitted_at"),
    }


def market_items(payload: Json, empty: bool) -> Json:
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        return payload
    if empty:
        return {**payload, "items": [], "total": 0}
    return {**payload, "items": [market_item(i) for i in payload["items"]]}


# (method, Sous route pattern) -> the view that route's answers get, for every caller.
ROUTE_VIEWS: dict[tuple[str, str], Callable[[Json, str], Json]] = {
    ("GET", EXECUTION): execution_view,
    ("GET", "/api/workflow-recipes/{id}/executions"): executions_page,
    ("GET", "/api/workflow-recipes/{id}/suggestions"): lambda p, _: _learning(p),
    ("POST", "/api/workflow-recipes/{id}/learn"): lambda p, _: _learning(p),
    ("GET", "/api/workflows/active"): lambda p, _: active_workflows(p),
    ("GET", "/api/workflow-recipes"): lambda p, _: recipe_view(p),
    ("GET", "/api/workflow-recipes/{id}"): lambda p, _: recipe_view(p),
    ("POST", "/api/workflow-recipes"): lambda p, _: recipe_view(p),
    ("PUT", "/api/workflow-recipes/{id}"): lambda p, _: recipe_view(p),
}

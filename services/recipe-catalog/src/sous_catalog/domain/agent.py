"""The Agent aggregate: its public snapshot and what may change (docs/architecture.md, "Write models")."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

AGGREGATE = "Agent"

OWNED_FIELDS = (
    "id",
    "number",
    "workspace_id",
    "name",
    "description",
    "model_config",
    "skills",
    "configuration",
    "status",
    "created_by",
    "created_at",
    "updated_at",
    "revision",
)
UPDATABLE_FIELDS = ("name", "description", "model_config", "skills", "configuration", "status")
DEFAULT_CONFIGURATION: dict[str, Any] = {"max_iterations": 10}


def clean_model_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The declared keys only (unset ones as null), never a raw secret."""
    keys = ("provider", "model_id", "base_url", "api_key_secret", "api_key_env", "temperature", "max_tokens")
    return {k: config.get(k) for k in keys}


def new_snapshot(
    *, agent_id: str, number: int, workspace_id: str, data: Mapping[str, Any], created_by: str, now: datetime
) -> dict[str, Any]:
    stamp = now.isoformat()
    return {
        "id": agent_id,
        "number": number,
        "workspace_id": workspace_id,
        "name": data["name"],
        "description": data.get("description") or "",
        "model_config": clean_model_config(data["model_config"]),
        "skills": list(data.get("skills") or []),
        "configuration": {**DEFAULT_CONFIGURATION, **(data.get("configuration") or {})},
        "status": data.get("status") or "active",
        "created_by": created_by,
        "created_at": stamp,
        "updated_at": stamp,
        "revision": 1,
    }


def apply_changes(
    current: Mapping[str, Any], changes: Mapping[str, Any], *, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    updated = {k: copy.deepcopy(current.get(k)) for k in OWNED_FIELDS}
    changed: list[str] = []
    for name in UPDATABLE_FIELDS:
        if name not in changes or changes[name] is None:
            continue
        value: Any = copy.deepcopy(changes[name])
        if name == "model_config":
            value = clean_model_config(value)
        elif name == "configuration":
            value = {**DEFAULT_CONFIGURATION, **value}
        if value != updated.get(name):
            updated[name] = value
            changed.append(name)
    if changed:
        updated["updated_at"] = now.isoformat()
        updated["revision"] = int(current.get("revision") or 0) + 1
    return updated, changed


def enrichment(agent: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The summary a recipe step shows of its agent."""
    if agent is None:
        return None
    model = agent.get("model_config") or {}
    return {
        "id": agent.get("id"),
        "number": agent.get("number"),
        "name": agent.get("name"),
        "model": model.get("model_id"),
        "provider": model.get("provider"),
        "tool_count": len(agent.get("skills") or []),
        "status": agent.get("status"),
    }

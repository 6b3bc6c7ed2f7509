"""What the client sends: `--input k=v` pairs and recipe files (whose steps may name their agent)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sous_local.client.http import ClientError, Gateway


def parse_inputs(pairs: Iterable[str]) -> dict[str, Any]:
    """`k=v` pairs; a value that is valid JSON (number, true, [..], {..}) is taken as JSON, else as text."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ClientError(f"--input expects key=value, not {pair!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, str) or raw.strip() == "":
            value = raw
        data[key.strip()] = value
    return data


def load_recipe_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ClientError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ClientError(f"{path} must hold one recipe (a mapping)")
    return data


def resolve_agents(gateway: Gateway, recipe: dict[str, Any]) -> dict[str, Any]:
    """Steps may name their agent (`agent: Sous sample agent`) instead of giving its id."""
    steps = recipe.get("steps")
    if not isinstance(steps, list) or not any(isinstance(s, dict) and "agent" in s for s in steps):
        return recipe
    page = gateway.get("/api/agents", limit=100)
    by_name = {a["name"]: a["id"] for a in page.get("items", [])}
    resolved = []
    for step in steps:
        if isinstance(step, dict) and "agent" in step:
            step = dict(step)
            name = str(step.pop("agent"))
            if name not in by_name:
                raise ClientError(f"step {step.get('step_id')!r}: no agent named {name!r} in this workspace")
            step.setdefault("agent_id", by_name[name])
        resolved.append(step)
    recipe = dict(recipe)
    recipe["steps"] = resolved
    recipe.setdefault("template_definition", {})
    return recipe

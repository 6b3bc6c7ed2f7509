"""What a listing may carry: a recipe and its agents without anything private to the source workspace.

A listing is public once approved, so its snapshot keeps only what the recipe needs to run elsewhere:
no workspace id, no internal ids or revisions, no usage statistics or learning data, no webhook ids or
secret references of the source; agents keep their name, description, model choice, skills and
configuration, minus anything secret-looking. Where the source agent used a key (a workspace secret or
an environment variable, both only meaningful in the source workspace), the agent carries `bind_secrets`
instead: the fields an installer fills with secrets of their own.
The agent's `id` stays: the catalog maps it to an agent of the target workspace and rewrites the steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sous_events.contracts import RecipeDefinition

# Recipe fields a listing keeps: the recipe's definition (the published contract); everything else is
# workspace-private or recomputed by the target catalog.
RECIPE_FIELDS = tuple(RecipeDefinition.model_fields)
SCHEDULE_PRIVATE = ("webhook_id", "webhook_secret_env", "webhook_secret")
MODEL_CONFIG_FIELDS = ("provider", "model_id", "base_url", "temperature", "max_tokens")
KEY_REFERENCES = ("api_key_secret", "api_key_env")
KEY_BINDING = "model_config.api_key_secret"
AGENT_FIELDS = ("id", "name", "description", "skills")

SECRET_KEY = re.compile(
    r"(secret|password|passwd|token|api[_-]?key|apikey|credential|private[_-]?key|auth(?!or))", re.I
)
# Composio actions are named APP_ACTION in capitals (GITHUB_CREATE_ISSUE); built-in tools are lower case.
COMPOSIO_TOOL = re.compile(r"^(composio[_:.].+|[A-Z][A-Z0-9]*_[A-Z0-9_]+)$")


def _strip_secrets(value: Any) -> Any:
    """Drop every mapping key that looks like it holds a secret, at any depth."""
    if isinstance(value, dict):
        return {k: _strip_secrets(v) for k, v in value.items() if not (isinstance(k, str) and SECRET_KEY.search(k))}
    if isinstance(value, list):
        return [_strip_secrets(v) for v in value]
    return value


def _public_url(url: Any) -> str | None:
    """An endpoint URL without credentials, query or fragment (where tokens hide)."""
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def public_model_config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        return {}
    out: dict[str, Any] = {}
    for key in MODEL_CONFIG_FIELDS:
        if key not in config or config[key] is None:
            continue
        value = config[key]
        if key == "base_url":
            value = _public_url(value)
            if value is None:
                continue
        out[key] = value
    return out


def public_agent(agent: dict[str, Any]) -> dict[str, Any]:
    """The agent as a listing carries it: no secrets, no workspace data, no metrics or status."""
    out: dict[str, Any] = {key: agent[key] for key in AGENT_FIELDS if key in agent}
    out["skills"] = [s for s in out.get("skills") or [] if isinstance(s, str)]
    out["model_config"] = public_model_config(agent.get("model_config"))
    configuration = agent.get("configuration")
    out["configuration"] = _strip_secrets(configuration) if isinstance(configuration, dict) else {}
    config = agent.get("model_config")
    uses_key = isinstance(config, dict) and any(config.get(k) for k in KEY_REFERENCES)
    # Re-applying to a listing made earlier keeps what it said about bindings.
    if uses_key or KEY_BINDING in (agent.get("bind_secrets") or []):
        out["bind_secrets"] = [KEY_BINDING]
    return out


def public_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe as a listing carries it (see RECIPE_FIELDS), webhook ids and secret references removed.

    Recipe fields hold no secrets by contract (a webhook secret is referenced by name); input *names* such
    as `api_token` are part of the recipe, so no key is stripped by its look here.
    """
    out = {key: recipe[key] for key in RECIPE_FIELDS if key in recipe}
    schedule = out.get("schedule_config")
    if isinstance(schedule, dict):
        out["schedule_config"] = {k: v for k, v in schedule.items() if k not in SCHEDULE_PRIVATE}
    return out


def step_agent_ids(recipe: dict[str, Any]) -> list[str]:
    """The agent ids the recipe's steps use, in step order, without repeats."""
    seen: list[str] = []
    for step in recipe.get("steps") or []:
        agent_id = step.get("agent_id") if isinstance(step, dict) else None
        if isinstance(agent_id, str) and agent_id and agent_id not in seen:
            seen.append(agent_id)
    return seen


def composio_tools(recipe: dict[str, Any], agents: Iterable[dict[str, Any]]) -> list[str]:
    """Tools of the recipe and its agents that need a Composio connection in the target workspace."""
    names: list[str] = []
    candidates = [*list(recipe.get("required_tools") or []), *(s for a in agents for s in a.get("skills") or [])]
    for name in candidates:
        if isinstance(name, str) and COMPOSIO_TOOL.match(name) and name not in names:
            names.append(name)
    return names

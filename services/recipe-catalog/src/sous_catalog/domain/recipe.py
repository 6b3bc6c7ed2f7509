"""The Recipe aggregate: its public snapshot and what may change.

Recipe events carry the full public snapshot, so the aggregate's state after any event is that event's
snapshot; the read-model row, written in the same transaction, is that state (docs/architecture.md). Statistics (use_count, success_rate, popularity, quality_score, learning_data...) are derived from
other services' events and kept in the read model only; the snapshot carries their value at that time.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sous_events.contracts import RecipeDefinition, RecipeSnapshot, RecipeStatistics, Snapshot

AGGREGATE = "Recipe"

# The fields come from the published contract (sous_events.contracts.recipe), so a field added there is owned,
# updatable, kept in the read model and carried by the events without being listed again here.
# Fields the catalog owns: they change only through Recipe events.
OWNED_FIELDS = tuple(name for name in RecipeSnapshot.model_fields if name not in RecipeStatistics.model_fields)

# Fields derived from consumed events (executions, quality, installs); read model only.
STAT_DEFAULTS: dict[str, Any] = {
    name: field.get_default(call_default_factory=True) for name, field in RecipeStatistics.model_fields.items()
}

# What a recipe is (its definition) and its visibility may change; identity, provenance and stamps may not.
UPDATABLE_FIELDS = (
    *(name for name in RecipeDefinition.model_fields if name != "template_id"),
    "is_public",
    "is_featured",
)

EXECUTION_DEFAULTS: dict[str, Any] = {
    "mode": "sequential",
    "max_retries": 1,
    "retry_delay": 5,
    "max_retry_delay": 300,
    "timeout_per_step": 300,
    "total_timeout": 600,
    "auto_learning": True,
    "quality_threshold": 0.7,
}

WEBHOOK_TYPES = ("webhook", "trigger")


class RecipeLocked(Exception):
    """System recipes cannot be changed or deleted."""


def category_of(tags: Any) -> str:
    if isinstance(tags, list) and tags and isinstance(tags[0], str) and tags[0].strip():
        return tags[0].strip()
    return "General"


def normalize_schedule(
    schedule: Mapping[str, Any] | None, previous: Mapping[str, Any] | None, new_webhook_id: Callable[[], str]
) -> dict[str, Any]:
    """Webhook and trigger schedules get a webhook_id (kept across updates); others carry none."""
    out = dict(schedule or {"type": "manual"})
    out.setdefault("type", "manual")
    out.pop("webhook_id", None)
    if out["type"] in WEBHOOK_TYPES:
        kept = (previous or {}).get("webhook_id")
        out["webhook_id"] = kept if isinstance(kept, str) and kept else new_webhook_id()
    for key in ("webhook_secret", "webhook_secret_env"):
        if out.get(key) is None:
            out.pop(key, None)
    return out


def normalize_execution(config: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(EXECUTION_DEFAULTS)
    out.update({k: v for k, v in (config or {}).items() if v is not None})
    return out


def owned_view(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(snapshot.get(k)) for k in OWNED_FIELDS}


def _definition_default(name: str) -> Any:
    default = RecipeDefinition.model_fields[name].get_default(call_default_factory=True)
    return default.as_dict() if isinstance(default, Snapshot) else default


def new_snapshot(
    *,
    recipe_id: str,
    workspace_id: str,
    data: Mapping[str, Any],
    created_by: str,
    now: datetime,
    new_webhook_id: Callable[[], str],
    cloned_from: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new recipe: every definition field as given (else its default), normalised where it needs it."""
    stamp = now.isoformat()
    snapshot: dict[str, Any] = {
        name: copy.deepcopy(data[name]) if data.get(name) is not None else _definition_default(name)
        for name in RecipeDefinition.model_fields
    }
    snapshot.update(
        id=recipe_id,
        workspace_id=workspace_id,
        steps=sorted((dict(s) for s in data["steps"]), key=lambda s: s.get("order", 0)),
        execution_config=normalize_execution(data.get("execution_config")),
        schedule_config=normalize_schedule(data.get("schedule_config"), None, new_webhook_id),
        is_public=data.get("is_public") is not False,
        is_featured=data.get("is_featured") is True,
        is_system=data.get("is_system") is True,
        cloned_from=dict(cloned_from) if cloned_from else None,
        created_by=created_by,
        created_at=stamp,
        updated_at=stamp,
        revision=1,
    )
    return {name: snapshot[name] for name in OWNED_FIELDS if name in snapshot}


def apply_changes(
    current: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    now: datetime,
    new_webhook_id: Callable[[], str],
) -> tuple[dict[str, Any], list[str]]:
    """The owned snapshot after the changes, and the public fields that really changed."""
    if current.get("is_system"):
        raise RecipeLocked(str(current.get("template_id")))
    updated = owned_view(current)
    changed: list[str] = []
    for name in UPDATABLE_FIELDS:
        if name not in changes:
            continue
        value: Any = copy.deepcopy(changes[name])
        if name == "steps":
            value = sorted((dict(s) for s in value), key=lambda s: s.get("order", 0))
        elif name == "schedule_config":
            value = normalize_schedule(value, current.get("schedule_config"), new_webhook_id)
        elif name == "execution_config":
            value = normalize_execution(value)
        elif name == "description" and value is None:
            value = ""
        if value != updated.get(name):
            updated[name] = value
            changed.append(name)
    if changed:
        updated["updated_at"] = now.isoformat()
        updated["revision"] = int(current.get("revision") or 0) + 1
    return updated, changed


def ensure_deletable(current: Mapping[str, Any]) -> None:
    if current.get("is_system"):
        raise RecipeLocked(str(current.get("template_id")))


def popularity(use_count: int, success_rate: float, quality_score: float | None) -> float:
    """use_count weighted by outcomes: each use counts from 0.25 (all failing, no quality) to 1.

    popularity = use_count * (0.5 + 0.5 * success_rate) * (0.5 + 0.5 * quality), where quality is the
    rolling quality score (0..1), 0.5 until the recipe has been assessed.
    """
    quality = 0.5 if quality_score is None else min(max(quality_score, 0.0), 1.0)
    rate = min(max(success_rate, 0.0), 1.0)
    return round(use_count * (0.5 + 0.5 * rate) * (0.5 + 0.5 * quality), 6)


_INSTALL_SUFFIX = re.compile(r"^(?P<original>.+)-[0-9a-f]{6}$")


def original_template_id(template_id: str) -> str:
    """The listing's template id without the marketplace's `-<6 hex>` install suffix."""
    match = _INSTALL_SUFFIX.match(template_id)
    return match.group("original") if match else template_id


def copy_name(name: str, taken: Sequence[str]) -> str:
    if name not in taken:
        return name
    candidate = f"{name} (Copy)"
    counter = 2
    while candidate in taken:
        candidate = f"{name} (Copy {counter})"
        counter += 1
    return candidate

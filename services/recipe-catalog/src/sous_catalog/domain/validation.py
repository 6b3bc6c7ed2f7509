"""Recipe and agent rules that span fields: step graph, schedules, agent references, storable JSON.

Shapes and ranges are checked by the pydantic schemas first; these rules see plain, already typed data
and return every violation with its field path (`steps[2].agent_id`), never raise on odd input.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from sous_service.domain_errors import FieldError

ERROR_HANDLING = ("stop", "continue", "retry", "skip")
EXECUTION_MODES = ("sequential", "parallel")
SCHEDULE_TYPES = ("manual", "cron", "trigger", "webhook")
NON_NEGATIVE_EXECUTION_FIELDS = (
    "max_retries",
    "retry_delay",
    "max_retry_delay",
    "timeout_per_step",
    "total_timeout",
    "parallel_limit",
    "quality_threshold",
    "max_tokens",
    "max_cost_usd",
)


def _err(field: str, message: str, type_: str = "value_error") -> FieldError:
    return FieldError(field=field, message=message, type=type_)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def storable_json_errors(value: Any, path: str) -> list[FieldError]:
    """PostgreSQL JSONB and text refuse NUL characters, lone surrogates and non-finite numbers."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack and len(errors) < 20:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                errors.append(_err(where or "body", "must not contain NUL characters", "string_nul"))
            else:
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    errors.append(_err(where or "body", "must be valid unicode text", "string_unicode"))
        elif isinstance(item, float):
            if not math.isfinite(item):
                errors.append(_err(where or "body", "must be a finite number", "finite_number"))
        elif isinstance(item, Mapping):
            for key, sub in item.items():
                key_text = str(key)
                stack.append((key_text, _join(where, key_text)))
                stack.append((sub, _join(where, key_text)))
        elif isinstance(item, list | tuple):
            for index, sub in enumerate(item):
                stack.append((sub, f"{where}[{index}]"))
    return errors


def find_cycle(graph: Mapping[str, Collection[str]]) -> list[str] | None:
    """A dependency cycle as a list of node ids, or None (iterative DFS, safe on deep graphs)."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for root in graph:
        if color[root] != white:
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(graph[root]))]
        color[root] = grey
        path.append(root)
        while stack:
            node, children = stack[-1]
            advanced = False
            for child in children:
                if child not in color:
                    continue
                if color[child] == grey:
                    return [*path[path.index(child) :], child]
                if color[child] == white:
                    color[child] = grey
                    path.append(child)
                    stack.append((child, iter(graph[child])))
                    advanced = True
                    break
            if not advanced:
                color[node] = black
                path.pop()
                stack.pop()
    return None


def validate_steps(steps: Any, field: str = "steps") -> list[FieldError]:
    if not isinstance(steps, list):
        return [_err(field, "must be a list of steps", "list_type")]
    if not steps:
        return [_err(field, "a recipe needs at least one step", "too_short")]
    errors: list[FieldError] = []
    first_index: dict[str, int] = {}
    for index, step in enumerate(steps):
        where = f"{field}[{index}]"
        if not isinstance(step, Mapping):
            errors.append(_err(where, "must be an object", "dict_type"))
            continue
        step_id = step.get("step_id")
        if not isinstance(step_id, str) or not step_id.strip():
            errors.append(_err(f"{where}.step_id", "is required", "missing"))
        elif step_id in first_index:
            errors.append(
                _err(
                    f"{where}.step_id", f"duplicate step_id {step_id!r} (also steps[{first_index[step_id]}])", "unique"
                )
            )
        else:
            first_index[step_id] = index
        order = step.get("order")
        if isinstance(order, bool) or not isinstance(order, int):
            errors.append(_err(f"{where}.order", "must be an integer", "int_type"))
        agent_id = step.get("agent_id")
        if not isinstance(agent_id, str) or not agent_id.strip():
            errors.append(_err(f"{where}.agent_id", "is required", "missing"))
        handling = step.get("error_handling", "stop")
        if handling not in ERROR_HANDLING:
            errors.append(_err(f"{where}.error_handling", f"must be one of {', '.join(ERROR_HANDLING)}", "enum"))
    graph: dict[str, list[str]] = {}
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        step_id = step.get("step_id")
        depends = step.get("depends_on") or []
        if not isinstance(depends, list):
            errors.append(_err(f"{field}[{index}].depends_on", "must be a list of step ids", "list_type"))
            continue
        for dep_index, dep in enumerate(depends):
            where = f"{field}[{index}].depends_on[{dep_index}]"
            if dep == step_id:
                errors.append(_err(where, "a step cannot depend on itself", "self_dependency"))
            elif not isinstance(dep, str) or dep not in first_index:
                errors.append(_err(where, f"unknown step {dep!r}", "unknown_step"))
        if isinstance(step_id, str) and first_index.get(step_id) == index:
            graph[step_id] = [d for d in depends if isinstance(d, str) and d != step_id]
    errors.extend(_pass_to_errors(steps, field))
    if not errors:
        cycle = find_cycle(graph)
        if cycle is not None:
            where = f"{field}[{first_index[cycle[0]]}].depends_on"
            errors.append(_err(where, "dependency cycle: " + " -> ".join(cycle), "cycle"))
    return errors


def _pass_to_errors(steps: list[Any], field: str) -> list[FieldError]:
    """`pass_to` names a later step (by order): every later step already receives the output."""
    orders = {s.get("step_id"): s.get("order") for s in steps if isinstance(s, Mapping)}
    errors: list[FieldError] = []
    for index, step in enumerate(steps):
        target = step.get("pass_to") if isinstance(step, Mapping) else None
        if target is None:
            continue
        later = orders.get(target)
        if target not in orders or target == step.get("step_id"):
            errors.append(_err(f"{field}[{index}].pass_to", f"unknown step {target!r}", "unknown_step"))
        elif not isinstance(later, int) or not isinstance(step.get("order"), int) or later <= step["order"]:
            errors.append(_err(f"{field}[{index}].pass_to", "must name a later step", "not_later"))
    return errors


def valid_cron(expression: str) -> bool:
    fields = expression.split()
    if len(fields) != 5:
        return False
    try:
        return bool(croniter.is_valid(" ".join(fields)))
    except Exception:
        return False


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:
        return False
    return True


def validate_schedule(schedule: Any, field: str = "schedule_config") -> list[FieldError]:
    if schedule is None:
        return []
    if not isinstance(schedule, Mapping):
        return [_err(field, "must be an object", "dict_type")]
    errors: list[FieldError] = []
    kind = schedule.get("type", "manual")
    if kind not in SCHEDULE_TYPES:
        errors.append(_err(f"{field}.type", f"must be one of {', '.join(SCHEDULE_TYPES)}", "enum"))
    if kind == "cron":
        expression = schedule.get("cron_expression")
        if not isinstance(expression, str) or not expression.strip():
            errors.append(_err(f"{field}.cron_expression", "is required when type is cron", "missing"))
        elif not valid_cron(expression):
            errors.append(_err(f"{field}.cron_expression", "must be a valid 5-field cron expression", "cron"))
    if kind == "trigger" and not isinstance(schedule.get("trigger_config"), Mapping):
        errors.append(_err(f"{field}.trigger_config", "is required when type is trigger", "missing"))
    timezone = schedule.get("timezone")
    if timezone is not None and (not isinstance(timezone, str) or not valid_timezone(timezone)):
        errors.append(_err(f"{field}.timezone", "unknown time zone", "timezone"))
    return errors


def validate_execution_config(config: Any, field: str = "execution_config") -> list[FieldError]:
    if config is None:
        return []
    if not isinstance(config, Mapping):
        return [_err(field, "must be an object", "dict_type")]
    errors: list[FieldError] = []
    if config.get("mode", "sequential") not in EXECUTION_MODES:
        errors.append(_err(f"{field}.mode", f"must be one of {', '.join(EXECUTION_MODES)}", "enum"))
    for name in NON_NEGATIVE_EXECUTION_FIELDS:
        value = config.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            errors.append(_err(f"{field}.{name}", "must be a non-negative number", "non_negative"))
    return errors


def agent_reference_errors(steps: Any, known_agent_ids: Collection[str], field: str = "steps") -> list[FieldError]:
    if not isinstance(steps, list):
        return []
    errors: list[FieldError] = []
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        for where, agent_id in _agent_references(step, f"{field}[{index}]"):
            if agent_id not in known_agent_ids:
                errors.append(_err(where, f"agent {agent_id!r} does not exist in this workspace", "unknown_agent"))
    return errors


def _agent_references(step: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    """(field path, agent id) of the step's agent and of its judge checks' agents."""
    found: list[tuple[str, str]] = []
    if isinstance(step.get("agent_id"), str) and step["agent_id"]:
        found.append((f"{where}.agent_id", step["agent_id"]))
    checks = step.get("checks")
    for index, check in enumerate(checks if isinstance(checks, list) else []):
        if isinstance(check, Mapping) and isinstance(check.get("agent_id"), str) and check["agent_id"]:
            found.append((f"{where}.checks[{index}].agent_id", check["agent_id"]))
    return found


def step_agent_ids(steps: Any) -> list[str]:
    """The distinct agent ids the steps reference, in first-use order."""
    seen: dict[str, None] = {}
    if isinstance(steps, list):
        for step in steps:
            if isinstance(step, Mapping):
                for _, agent_id in _agent_references(step, ""):
                    seen.setdefault(agent_id, None)
    return list(seen)


REQUIRED_ON_CREATE = ("template_id", "name", "description", "template_definition", "steps")
NOT_NULL = (
    "name",
    "description",
    "tags",
    "template_definition",
    "steps",
    "inputs",
    "outputs",
    "execution_config",
    "schedule_config",
    "recommended_agents",
    "required_tools",
    "is_public",
    "is_featured",
    "version",
    "changelog",
)


def validate_recipe_fields(fields: Mapping[str, Any], *, creating: bool) -> list[FieldError]:
    """The rules for the given fields (all of them on create, the changed ones on update)."""
    errors: list[FieldError] = []
    if creating:
        for name in REQUIRED_ON_CREATE:
            if fields.get(name) is None:
                errors.append(_err(name, "field required", "missing"))
    if not creating:
        for name in NOT_NULL:
            if name in fields and fields[name] is None:
                errors.append(_err(name, "may not be null", "not_null"))
    for name, value in fields.items():
        errors.extend(storable_json_errors(value, name))
    if fields.get("steps") is not None:
        errors.extend(validate_steps(fields["steps"]))
    if fields.get("execution_config") is not None:
        errors.extend(validate_execution_config(fields["execution_config"]))
    if fields.get("schedule_config") is not None:
        errors.extend(validate_schedule(fields["schedule_config"]))
    return errors

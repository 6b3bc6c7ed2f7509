"""The planner's structured output: its JSON Schema, and the checks a schema cannot express."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from sous_service.text import clean_json

PLAN_SCHEMA_NAME = "sous_workflow_plan"
SUBTASK_ID = "^[a-z][a-z0-9_-]{0,39}$"


def plan_schema(max_subtasks: int) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "subtasks"],
        "properties": {
            "summary": {"type": "string"},
            "subtasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_subtasks,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "title", "description", "skills", "depends_on"],
                    "properties": {
                        "id": {"type": "string", "pattern": SUBTASK_ID},
                        "title": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": {"type": "string", "minLength": 1, "maxLength": 4000},
                        "skills": {"type": "array", "items": {"type": "string"}},
                        "depends_on": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def validate_plan(raw: str | None, max_subtasks: int) -> tuple[dict[str, Any] | None, list[str]]:
    """The plan, or the list of errors to feed back to the planner (field path first)."""
    if not raw or not raw.strip():
        return None, ["(root): the reply is empty; answer with one JSON object"]
    try:
        plan = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, [f"(root): not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    plan = clean_json(plan)
    validator = Draft202012Validator(plan_schema(max_subtasks))
    errors = [f"{_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(plan)]
    if errors:
        return None, sorted(errors)[:20]
    return plan, _graph_errors(plan["subtasks"])


def _graph_errors(subtasks: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    ids = [s["id"] for s in subtasks]
    seen: set[str] = set()
    for i, sid in enumerate(ids):
        if sid in seen:
            errors.append(f"subtasks[{i}].id: duplicate id '{sid}'")
        seen.add(sid)
    for i, subtask in enumerate(subtasks):
        for dep in subtask["depends_on"]:
            if dep not in seen:
                errors.append(f"subtasks[{i}].depends_on: unknown subtask '{dep}'")
            elif dep == subtask["id"]:
                errors.append(f"subtasks[{i}].depends_on: a subtask cannot depend on itself")
    if not errors:
        cycle = _cycle({s["id"]: list(s["depends_on"]) for s in subtasks})
        if cycle:
            errors.append("subtasks: dependency cycle " + " -> ".join(cycle))
    return errors


def _cycle(deps: dict[str, list[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in deps:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def planner_messages(
    task: str, tools: list[str], agents: list[dict[str, Any]], max_subtasks: int
) -> list[dict[str, str]]:
    agent_lines = "\n".join(f"- {a.get('name')}: skills {', '.join(a.get('skills') or []) or 'none'}" for a in agents)
    system = (
        "You are the planner of a multi-agent workflow. Split the task into at most "
        f"{max_subtasks} subtasks that agents can carry out independently; list in depends_on the ids of the "
        "subtasks whose results a subtask needs. Answer with one JSON object that matches the schema "
        f"'{PLAN_SCHEMA_NAME}' and nothing else."
    )
    user = (
        f"<task>\n{task}\n</task>\n<tools>{', '.join(tools)}</tools>\n<max_subtasks>{max_subtasks}</max_subtasks>\n"
        f"Agents of this workspace:\n{agent_lines or '- none'}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def feedback_message(errors: list[str]) -> dict[str, str]:
    return {
        "role": "user",
        "content": "The plan was rejected. Fix these errors and answer again with the whole JSON object:\n"
        + "\n".join(f"- {e}" for e in errors),
    }

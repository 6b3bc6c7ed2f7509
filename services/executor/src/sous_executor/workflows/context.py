"""Stage 3 prompts per subtask, and the recipe stage 4 runs on the engine (no I/O)."""

from __future__ import annotations

import json
import re
from typing import Any

from sous_events.contracts import Suggestion

# The engine substitutes `{name}` placeholders; user text must not be read as one.
_PLACEHOLDER_LIKE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
MAX_MEMORY_CHARS = 600


def neutral(text: str) -> str:
    return _PLACEHOLDER_LIKE.sub(lambda m: "{ " + m.group(1) + " }", text)


def recipe_template_id(workflow_id: str) -> str:
    return f"workflow-{workflow_id}"


def subtask_context(
    *,
    task: str,
    subtask: dict[str, Any],
    inputs: dict[str, Any],
    suggestions: list[Suggestion],
    memories: list[dict[str, Any]],
) -> dict[str, Any]:
    deps = [str(d) for d in subtask.get("depends_on") or []]
    lines = [
        "You carry out one subtask of a larger task.",
        f"Task: {neutral(task)}",
        f"Subtask {subtask['id']}: {neutral(str(subtask.get('title') or ''))}",
        neutral(str(subtask.get("description") or "")),
    ]
    if inputs:
        lines.append("Inputs: " + neutral(json.dumps(inputs, ensure_ascii=False, default=str)))
    for dep in deps:
        lines.append(f"Result of subtask {dep}: {{steps.{dep}.output}}")
    for suggestion in suggestions:
        lines.append(f"Lesson from earlier runs: {neutral(suggestion.message)}")
    for memory in memories:
        lines.append(f"From memory (run {memory['run_id']}): {neutral(str(memory['snippet'])[:MAX_MEMORY_CHARS])}")
    return {
        "subtask_id": subtask["id"],
        "depends_on": deps,
        "inputs": sorted(inputs),
        "suggestions": [s.message for s in suggestions],
        "memories": [m["run_id"] for m in memories],
        "prompt": "\n".join(line for line in lines if line),
    }


def generated_recipe(
    *,
    workflow: dict[str, Any],
    plan: dict[str, Any],
    assignments: list[dict[str, Any]],
    contexts: list[dict[str, Any]],
) -> dict[str, Any]:
    config = workflow.get("configuration") or {}
    agent_of = {a["subtask_id"]: a["agent_id"] for a in assignments}
    prompt_of = {c["subtask_id"]: c["prompt"] for c in contexts}
    steps = [
        {
            "step_id": s["id"],
            "order": i,
            "agent_id": agent_of[s["id"]],
            "prompt_template": prompt_of[s["id"]],
            "depends_on": list(s.get("depends_on") or []),
            "error_handling": "retry",
            "max_retries": int(config.get("max_retries_per_subtask", 2)),
            "output_key": s["id"],
        }
        for i, s in enumerate(plan["subtasks"], start=1)
    ]
    execution_config: dict[str, Any] = {
        "mode": "parallel",
        "retry_delay": float(config.get("retry_delay", 0.5)),
        "max_retry_delay": 30,
        "timeout_per_step": float(config.get("timeout_per_subtask", 300)),
        "total_timeout": float(config.get("total_timeout", 1800)),
        "auto_learning": True,
    }
    for budget in ("max_tokens", "max_cost_usd"):
        if config.get(budget) is not None:
            execution_config[budget] = config[budget]
    return {
        "template_id": recipe_template_id(str(workflow["id"])),
        "name": f"Workflow: {workflow.get('name') or workflow['id']}",
        "description": str(plan.get("summary") or workflow.get("description") or ""),
        "steps": steps,
        "inputs": {},
        "outputs": {},
        "execution_config": execution_config,
        "template_definition": {"generated_by": "workflow", "workflow_id": workflow["id"]},
    }

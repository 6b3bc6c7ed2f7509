"""Prompt substitution: `{input.key}`, `{steps.<id>.output}`, and the origin's `{previous_output}`,
`{step_N_output}`, `{<output_key>}` (and bare `{<input key>}`); `{steps.<id>.output.<field>}` reads a field of
a step's JSON output (steps with an output_schema answer JSON). Unknown placeholders are reported."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sous_executor.domain.execution import Execution
from sous_executor.domain.planning import Plan, StepSpec
from sous_service.json_path import MISSING, lookup

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)\}")
STEP_N = re.compile(r"step_(\d+)_output")


@dataclass(frozen=True)
class PromptContext:
    inputs: Mapping[str, Any]
    # step_id -> output ("" when the step finished without one); only steps known to the recipe.
    step_outputs: Mapping[str, str | None]
    # step ids in order (index 0 = step 1)
    order: tuple[str, ...]
    output_keys: Mapping[str, str]  # output_key -> step_id
    current_step: str = ""


@dataclass(frozen=True)
class Rendered:
    text: str
    unknown: tuple[str, ...]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _field(output: str | None, path: list[str]) -> str | None:
    """`{steps.<id>.output.a.0.b}`: a field of a step's JSON output (None when absent or not JSON)."""
    try:
        value = json.loads(output or "")
    except ValueError:
        return None
    found = lookup(value, tuple(int(p) if p.isdigit() else p for p in path))
    return None if found is MISSING else _as_text(found)


def render(template: str, ctx: PromptContext) -> Rendered:
    unknown: list[str] = []

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        if parts[0] == "input" and len(parts) >= 2:
            key = ".".join(parts[1:])
            return _as_text(ctx.inputs[key]) if key in ctx.inputs else None
        if parts[0] == "steps" and len(parts) >= 3 and parts[2] == "output":
            sid = parts[1]
            if sid not in ctx.order:
                return None
            if len(parts) == 3:
                return _as_text(ctx.step_outputs.get(sid))
            return _field(ctx.step_outputs.get(sid), parts[3:])
        if name == "previous_output":
            if ctx.current_step in ctx.order:
                index = ctx.order.index(ctx.current_step)
                return _as_text(ctx.step_outputs.get(ctx.order[index - 1])) if index > 0 else ""
            return None
        match = STEP_N.fullmatch(name)
        if match:
            n = int(match.group(1))
            return _as_text(ctx.step_outputs.get(ctx.order[n - 1])) if 1 <= n <= len(ctx.order) else None
        if name in ctx.output_keys:
            return _as_text(ctx.step_outputs.get(ctx.output_keys[name]))
        if name in ctx.inputs:
            return _as_text(ctx.inputs[name])
        return None

    def substitute(match: re.Match[str]) -> str:
        value = resolve(match.group(1))
        if value is None:
            unknown.append(match.group(0))
            return match.group(0)
        return value

    text = PLACEHOLDER.sub(substitute, template)
    return Rendered(text=text, unknown=tuple(dict.fromkeys(unknown)))


def step_prompt(execution: Execution, plan: Plan, spec: StepSpec) -> Rendered:
    """A step's prompt: its template (or a rerun's override) filled from the run's inputs and outputs."""
    override = (execution.step_overrides.get(spec.step_id) or {}).get("prompt_template")
    template = str(override) if override else spec.prompt_template
    return render(
        template,
        PromptContext(
            inputs=execution.input_data,
            step_outputs={sid: s.output for sid, s in execution.steps.items()},
            order=tuple(s.step_id for s in plan.steps),
            output_keys={s.output_key: s.step_id for s in plan.steps if s.output_key},
            current_step=spec.step_id,
        ),
    )

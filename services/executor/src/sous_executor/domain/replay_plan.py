"""Which steps a what-if replay runs again and which reuse the recorded outputs.

A step runs again when its definition changed (or it is new), when the past execution has no completed
output for it, or when it depends on a step that runs again: by the plan's graph (sequential order or
depends_on) and by the outputs its prompt names (`{steps.<id>.output}`, `{<output_key>}`, `{step_N_output}`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sous_executor.domain.output_checks import ContractError, contract_of
from sous_executor.domain.planning import StepSpec, build_plan, parse_steps

_STEP_REF = re.compile(r"\{steps\.([A-Za-z0-9_\-]+)\.output")
_STEP_N = re.compile(r"\{step_(\d+)_output\}")
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)\}")


@dataclass(frozen=True)
class ReplayPlan:
    changed: tuple[str, ...]  # definition differs from the past execution's, or new
    rerun: tuple[str, ...]  # changed, not completed before, or downstream of one; in plan order
    reused: tuple[str, ...]  # recorded output reused
    removed: tuple[str, ...]  # steps of the past execution the candidate no longer has

    def as_json(self) -> dict[str, list[str]]:
        return {
            "changed_steps": list(self.changed),
            "rerun_steps": list(self.rerun),
            "reused_steps": list(self.reused),
            "removed_steps": list(self.removed),
        }


def _essence(step: Mapping[str, Any]) -> str:
    """What decides a step's answer, in one spelling: a replica and the catalog's history may write the same
    step with or without its defaults."""
    spec = dataclasses.asdict(StepSpec.from_dict(step, 0))
    spec.pop("order")
    try:
        contract = contract_of(step).model_dump(mode="json", exclude_none=True)
    except ContractError:
        contract = {"invalid": json.dumps([step.get("output_schema"), step.get("checks")], default=str)}
    return json.dumps({**spec, **contract}, sort_keys=True, default=str)


def changed_steps(original: Iterable[Mapping[str, Any]], candidate: Iterable[Mapping[str, Any]]) -> set[str]:
    before = {str(s.get("step_id")): _essence(s) for s in original}
    return {str(s.get("step_id")) for s in candidate if before.get(str(s.get("step_id"))) != _essence(s)}


def prompt_references(spec: StepSpec, specs: list[StepSpec]) -> set[str]:
    """The steps whose outputs the step's prompt names."""
    order = [s.step_id for s in specs]
    keys = {s.output_key: s.step_id for s in specs if s.output_key}
    text = spec.prompt_template
    found = {m.group(1) for m in _STEP_REF.finditer(text) if m.group(1) in order}
    found |= {order[int(m.group(1)) - 1] for m in _STEP_N.finditer(text) if 1 <= int(m.group(1)) <= len(order)}
    found |= {keys[m.group(1)] for m in _NAME.finditer(text) if m.group(1) in keys}
    if "{previous_output}" in text and spec.step_id in order and order.index(spec.step_id) > 0:
        found.add(order[order.index(spec.step_id) - 1])
    found.discard(spec.step_id)
    return found


def plan_replay(
    original_steps: list[Mapping[str, Any]],
    candidate_steps: list[Mapping[str, Any]],
    execution_config: Mapping[str, Any],
    completed: Iterable[str],
) -> ReplayPlan:
    """`completed`: the steps with a recorded output in the past execution. Raises PlanError."""
    specs = parse_steps(candidate_steps)
    plan = build_plan(specs, execution_config)
    done = set(completed)
    seeds = changed_steps(original_steps, candidate_steps) | {s.step_id for s in specs if s.step_id not in done}
    readers: dict[str, set[str]] = {s.step_id: set() for s in specs}
    for spec in specs:
        for source in prompt_references(spec, specs):
            readers[source].add(spec.step_id)
    rerun: set[str] = set()
    frontier = list(seeds)
    while frontier:
        sid = frontier.pop()
        if sid in rerun:
            continue
        rerun.add(sid)
        frontier.extend((plan.descendants(sid) | readers.get(sid, set())) - rerun)
    ordered = [s.step_id for s in specs]
    candidate_ids = set(ordered)
    return ReplayPlan(
        changed=tuple(s for s in ordered if s in seeds and s in changed_steps(original_steps, candidate_steps)),
        rerun=tuple(s for s in ordered if s in rerun),
        reused=tuple(s for s in ordered if s not in rerun),
        removed=tuple(str(s.get("step_id")) for s in original_steps if str(s.get("step_id")) not in candidate_ids),
    )


def apply_overrides(steps: list[Mapping[str, Any]], overrides: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The steps with each override's fields replacing the step's own."""
    return [{**step, **overrides.get(str(step.get("step_id")), {})} for step in steps]

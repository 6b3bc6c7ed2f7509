"""Which steps may start now: sequential by order, parallel up to a limit, or a DAG by depends_on."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ERROR_HANDLING = {"stop": "stop", "continue": "continue", "skip": "continue", "retry": "retry"}


class PlanError(ValueError):
    """The recipe's steps cannot be scheduled (unknown or cyclic dependencies, duplicate ids)."""


@dataclass(frozen=True)
class StepSpec:
    step_id: str
    order: int
    agent_id: str
    prompt_template: str
    error_handling: str = "stop"
    max_retries: int | None = None
    retry_delay: float | None = None
    timeout: float | None = None
    output_key: str | None = None
    max_iterations: int | None = None
    depends_on: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], index: int) -> StepSpec:
        handling = ERROR_HANDLING.get(str(raw.get("error_handling") or "stop").lower())
        if handling is None:
            raise PlanError(f"steps[{index}].error_handling: unknown value {raw.get('error_handling')!r}")

        def number(name: str) -> float | None:
            value = raw.get(name)
            return None if value is None else float(value)

        retries = raw.get("max_retries")
        iterations = raw.get("max_iterations")
        return cls(
            step_id=str(raw.get("step_id") or f"step_{index + 1}"),
            order=int(raw.get("order", index + 1)),
            agent_id=str(raw.get("agent_id") or ""),
            prompt_template=str(raw.get("prompt_template") or ""),
            error_handling=handling,
            max_retries=None if retries is None else int(retries),
            retry_delay=number("retry_delay"),
            timeout=number("timeout"),
            output_key=raw.get("output_key") or None,
            max_iterations=None if iterations is None else int(iterations),
            depends_on=tuple(str(d) for d in raw.get("depends_on") or ()),
        )


def parse_steps(raw_steps: Iterable[Mapping[str, Any]]) -> list[StepSpec]:
    steps = [StepSpec.from_dict(raw, i) for i, raw in enumerate(raw_steps)]
    steps.sort(key=lambda s: (s.order, s.step_id))
    ids = [s.step_id for s in steps]
    if len(set(ids)) != len(ids):
        raise PlanError("step ids must be unique")
    return steps


@dataclass(frozen=True)
class Plan:
    steps: tuple[StepSpec, ...]
    dependencies: Mapping[str, tuple[str, ...]]
    limit: int
    mode: str
    # Reverse adjacency (step -> steps that depend on it): graph walks stay linear in steps + edges.
    dependents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def by_id(self) -> dict[str, StepSpec]:
        return {s.step_id: s for s in self.steps}

    def ready(self, finished: Collection[str], running: Collection[str], blocked: Collection[str] = ()) -> list[str]:
        """Steps whose dependencies all finished, not running, not finished, within the concurrency limit."""
        free = self.limit - len(running)
        if free <= 0:
            return []
        out: list[str] = []
        for step in self.steps:
            sid = step.step_id
            if sid in finished or sid in running or sid in blocked:
                continue
            if all(dep in finished for dep in self.dependencies[sid]):
                out.append(sid)
                if len(out) >= free:
                    break
        return out

    def descendants(self, step_id: str) -> set[str]:
        found: set[str] = set()
        frontier = [step_id]
        while frontier:
            for sid in self.dependents.get(frontier.pop(), ()):
                if sid not in found:
                    found.add(sid)
                    frontier.append(sid)
        return found

    @property
    def edge_count(self) -> int:
        return sum(len(deps) for deps in self.dependencies.values())


def build_plan(steps: list[StepSpec], execution_config: Mapping[str, Any]) -> Plan:
    """Sequential: each step waits for the previous one. Parallel: none wait (up to parallel_limit).
    DAG (any step declares depends_on): each step waits for its declared dependencies."""
    mode = str(execution_config.get("mode") or "sequential")
    ids = {s.step_id for s in steps}
    dag = any(s.depends_on for s in steps)
    limit_raw = execution_config.get("parallel_limit")
    limit = int(limit_raw) if limit_raw else max(1, len(steps))
    dependencies: dict[str, tuple[str, ...]] = {}
    if dag:
        for step in steps:
            unknown = [d for d in step.depends_on if d not in ids]
            if unknown:
                raise PlanError(f"step {step.step_id} depends on unknown steps {unknown}")
            dependencies[step.step_id] = step.depends_on
        _check_acyclic(dependencies)
        mode = "dag"
    elif mode == "parallel":
        dependencies = {s.step_id: () for s in steps}
    elif mode == "sequential":
        previous: tuple[str, ...] = ()
        for step in steps:
            dependencies[step.step_id] = previous
            previous = (step.step_id,)
        limit = 1
    else:
        raise PlanError(f"unknown execution mode {mode!r}")
    dependents: dict[str, list[str]] = {s.step_id: [] for s in steps}
    for sid, deps in dependencies.items():
        for dep in dict.fromkeys(deps):
            dependents[dep].append(sid)
    return Plan(
        steps=tuple(steps),
        dependencies=dependencies,
        limit=max(1, limit),
        mode=mode,
        dependents={k: tuple(v) for k, v in dependents.items()},
    )


def check_size(steps: Collection[StepSpec], *, max_steps: int, max_edges: int) -> None:
    """Caps that keep planning and scheduling cheap; raised before any graph work."""
    if len(steps) > max_steps:
        raise PlanError(f"a recipe has at most {max_steps} steps ({len(steps)} given)")
    edges = sum(len(s.depends_on) for s in steps)
    if edges > max_edges:
        raise PlanError(f"a recipe has at most {max_edges} dependency edges ({edges} given)")


def _check_acyclic(dependencies: Mapping[str, tuple[str, ...]]) -> None:
    """Kahn's algorithm, O(steps + edges) and iterative; a cycle is reported as a path."""
    pending = {node: len(set(deps)) for node, deps in dependencies.items()}
    dependents: dict[str, list[str]] = {node: [] for node in dependencies}
    for node, deps in dependencies.items():
        for dep in set(deps):
            dependents[dep].append(node)
    ready = [node for node, count in pending.items() if count == 0]
    while ready:
        for child in dependents[ready.pop()]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    stuck = {node for node, count in pending.items() if count > 0}
    if not stuck:
        return
    # Every stuck node waits on another stuck node: following them must revisit one.
    node = min(stuck)
    seen: dict[str, int] = {}
    path: list[str] = []
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(dep for dep in dependencies[node] if dep in stuck)
    raise PlanError("depends_on has a cycle: " + " -> ".join([*path[seen[node] :], node]))


def step_timeout(spec: StepSpec, execution_config: Mapping[str, Any]) -> float | None:
    """A step's own timeout, else the recipe's timeout_per_step; None (or 0) for none."""
    value = spec.timeout if spec.timeout is not None else execution_config.get("timeout_per_step")
    return float(value) if value else None

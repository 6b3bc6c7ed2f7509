"""What the domain knows about one execution: a small, I/O-free record built from the service's copies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})
DEFAULT_TIMEOUT_PER_STEP_S = 300.0
DEFAULT_TOTAL_TIMEOUT_S = 600.0
DEFAULT_TOKEN_BUDGET = 100_000


@dataclass(frozen=True)
class StepRecord:
    """One step result: the final state of a step, with how many attempts it took."""

    step_id: str
    order: int = 0
    agent_id: str = ""
    status: str = "pending"
    attempts: int = 1
    output: Any = None
    duration_ms: float | None = None
    tokens: int | None = None
    cost_usd: float = 0.0
    error: str | None = None
    timeout_s: float | None = None  # the step's own `timeout`, when it overrides timeout_per_step
    reused: bool = False  # its result was taken from an earlier run (a rerun's or a replay's), not produced

    @property
    def ran(self) -> bool:
        """The step produced its outcome in this run (neither reused nor skipped nor left pending)."""
        return self.status in ("completed", "failed") and not self.reused

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def has_output(self) -> bool:
        return not is_empty(self.output)


@dataclass(frozen=True)
class ExecutionRecord:
    execution_id: str
    template_id: str
    status: str
    steps: tuple[StepRecord, ...] = ()
    recipe_step_count: int = 0
    output_keys: tuple[str, ...] = ()
    output_data: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    total_duration_ms: float | None = None
    timeout_per_step_s: float = DEFAULT_TIMEOUT_PER_STEP_S
    total_timeout_s: float = DEFAULT_TOTAL_TIMEOUT_S
    total_tokens: int | None = None
    total_cost_usd: float = 0.0
    token_budget: int = DEFAULT_TOKEN_BUDGET
    required_inputs: tuple[str, ...] = ()
    input_data: dict[str, Any] = field(default_factory=dict)

    @property
    def expected(self) -> int:
        """The recipe's step count, or the number of results if the recipe has none."""
        return self.recipe_step_count or len(self.steps)

    @property
    def completed(self) -> int:
        return sum(1 for s in self.steps if s.status == "completed")

    @property
    def with_output(self) -> int:
        return sum(1 for s in self.steps if s.status == "completed" and s.has_output)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.steps if s.status == "failed")

    @property
    def retries(self) -> int:
        return sum(s.retries for s in self.steps)

    @property
    def ran_any_step(self) -> bool:
        """Some step produced its outcome in this run: the run is evidence of the recipe's quality."""
        return any(s.ran for s in self.steps)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def is_empty(value: Any) -> bool:
    """None, blank text and empty containers count as empty output."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict, tuple, set)):
        return len(value) == 0
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def record_from_copies(
    *,
    execution_id: str,
    template_id: str,
    status: str,
    steps: list[StepRecord],
    recipe: dict[str, Any],
    output_data: dict[str, Any] | None,
    error_message: str | None,
    total_duration_ms: float | None,
    total_tokens: int | None,
    total_cost_usd: float,
    input_data: dict[str, Any] | None,
    snapshot_inputs: dict[str, Any] | None = None,
) -> ExecutionRecord:
    """Build the record from a recipe object (outputs, execution_config, steps, inputs) and the run's data."""
    config = recipe.get("execution_config") or {}
    per_step = _number(config.get("timeout_per_step"))
    total = _number(config.get("total_timeout"))
    max_tokens = _number(config.get("max_tokens"))
    recipe_steps = recipe.get("steps") or []
    step_timeouts = {str(s.get("step_id")): _number(s.get("timeout")) for s in recipe_steps if isinstance(s, dict)}
    inputs = snapshot_inputs if snapshot_inputs is not None else (recipe.get("inputs") or {})
    required = tuple(
        name for name, spec in inputs.items() if isinstance(spec, dict) and bool(spec.get("required", False))
    )
    ordered = sorted(steps, key=lambda s: (s.order, s.step_id))
    ordered = [
        s
        if s.timeout_s is not None or not step_timeouts.get(s.step_id)
        else replace(s, timeout_s=step_timeouts[s.step_id])
        for s in ordered
    ]
    return ExecutionRecord(
        execution_id=execution_id,
        template_id=template_id,
        status=status,
        steps=tuple(ordered),
        recipe_step_count=len(recipe_steps),
        output_keys=tuple((recipe.get("outputs") or {}).keys()),
        output_data=dict(output_data or {}),
        error_message=error_message or None,
        total_duration_ms=total_duration_ms,
        timeout_per_step_s=per_step if per_step else DEFAULT_TIMEOUT_PER_STEP_S,
        total_timeout_s=total if total else DEFAULT_TOTAL_TIMEOUT_S,
        total_tokens=total_tokens,
        total_cost_usd=total_cost_usd,
        token_budget=int(max_tokens) if max_tokens else DEFAULT_TOKEN_BUDGET,
        required_inputs=required,
        input_data=dict(input_data or {}),
    )


def recipe_as_run(snapshot: Mapping[str, Any] | None, copy: Mapping[Any, Any] | None) -> dict[str, Any]:
    """The recipe the run used, with the catalog's current steps, outputs and execution_config when known."""
    recipe = dict(snapshot or {})
    if copy is not None:
        recipe.update(steps=copy["steps"], outputs=copy["outputs"], execution_config=copy["execution_config"])
    return recipe

"""Unit tests: the steps a fresh run starts with its request, and the StepStarted each attempt records."""

from __future__ import annotations

from typing import Any

import pytest

from sous_events.envelope import EventPayload
from sous_events.events.executor import ExecutionRequested, ExecutionStarted, StepStarted
from sous_events.registry import make_event
from sous_executor.domain.execution import Execution
from sous_executor.domain.step_start import MAX_PROMPT_IN_EVENT, opening_starts

pytestmark = pytest.mark.unit


def recipe(*steps: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {"template_id": "r", "steps": list(steps), "execution_config": {"mode": "sequential", **config}}


def step(sid: str, order: int, prompt: str = "do {input.topic}", **extra: Any) -> dict[str, Any]:
    return {"step_id": sid, "order": order, "agent_id": "a", "prompt_template": prompt, **extra}


def execution(raw_recipe: dict[str, Any], *payloads: EventPayload, **requested: Any) -> Execution:
    first = ExecutionRequested(
        execution_id="e", template_id="r", recipe=raw_recipe, input_data={"topic": "bread"}, **requested
    )
    events = [
        make_event(p, producer="executor", workspace_id="w", aggregate_id="e", aggregate_version=i)
        for i, p in enumerate([first, ExecutionStarted(execution_id="e", template_id="r"), *payloads], start=1)
    ]
    return Execution.from_events(events)


def test_a_sequential_run_opens_its_first_step_with_the_prompt_it_will_send() -> None:
    starts = opening_starts(execution(recipe(step("one", 1), step("two", 2, "then {previous_output}"))))
    assert [(s.step_id, s.attempt, s.order, s.prompt) for s in starts] == [("one", 1, 1, "do bread")]
    assert starts[0].execution_id == "e" and starts[0].agent_id == "a"


def test_a_parallel_run_opens_up_to_its_limit_and_a_graph_its_roots() -> None:
    three = [step("a", 1), step("b", 2), step("c", 3)]
    assert [s.step_id for s in opening_starts(execution(recipe(*three, mode="parallel", parallel_limit=2)))] == [
        "a",
        "b",
    ]
    graph = [step("a", 1), step("b", 2, depends_on=["a"]), step("c", 3)]
    assert [s.step_id for s in opening_starts(execution(recipe(*graph)))] == ["a", "c"]


def test_the_prompt_asks_for_the_step_s_output_schema_and_is_cut_to_the_event_s_size() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    (start,) = opening_starts(execution(recipe(step("one", 1, output_schema=schema))))
    assert start.prompt.startswith("do bread") and "JSON Schema" in start.prompt
    (long,) = opening_starts(execution(recipe(step("one", 1, "x" * (MAX_PROMPT_IN_EVENT + 50)))))
    assert len(long.prompt) == MAX_PROMPT_IN_EVENT


def test_nothing_opens_where_the_run_must_decide_first() -> None:
    # A rerun records the steps it keeps before it starts any.
    rerun = execution(recipe(step("one", 1)), rerun_of="earlier", from_step="one")
    assert opening_starts(rerun) == []
    # A plan that cannot be built, or an invalid output contract: the run records that failure itself.
    assert opening_starts(execution(recipe(step("one", 1, depends_on=["missing"])))) == []
    assert opening_starts(execution(recipe(step("one", 1, output_schema={"type": 12})))) == []
    # A run with a step started already is past its opening.
    started = StepStarted(execution_id="e", step_id="one", order=1, attempt=1, agent_id="a", prompt="p")
    assert opening_starts(execution(recipe(step("one", 1), step("two", 2)), started)) == []

"""Graph work stays linear and iterative: reverse adjacency, Kahn's cycle check, caps on steps and edges."""

from __future__ import annotations

import pytest

from sous_executor.domain.planning import PlanError, build_plan, check_size, parse_steps

pytestmark = pytest.mark.unit


def chain(n: int) -> list[dict[str, object]]:
    return [
        {"step_id": f"s{i}", "order": i, "agent_id": "a", "depends_on": [f"s{i - 1}"] if i else []} for i in range(n)
    ]


def test_descendants_follow_dependents() -> None:
    raw = [
        {"step_id": "a", "order": 1, "agent_id": "x"},
        {"step_id": "b", "order": 2, "agent_id": "x", "depends_on": ["a"]},
        {"step_id": "c", "order": 3, "agent_id": "x", "depends_on": ["a", "b"]},
        {"step_id": "d", "order": 4, "agent_id": "x", "depends_on": ["c"]},
        {"step_id": "e", "order": 5, "agent_id": "x"},
    ]
    plan = build_plan(parse_steps(raw), {})
    assert plan.descendants("a") == {"b", "c", "d"} and plan.descendants("c") == {"d"}
    assert plan.descendants("e") == set() and plan.edge_count == 4
    assert plan.dependents["a"] == ("b", "c")


def test_deep_graphs_are_checked_without_recursion() -> None:
    steps = chain(5000)
    plan = build_plan(parse_steps(steps), {})
    assert len(plan.descendants("s0")) == 4999
    steps[0]["depends_on"] = ["s4999"]
    with pytest.raises(PlanError, match="cycle: s0 -> s4999 -> s4998"):
        build_plan(parse_steps(steps), {})


def test_caps_on_steps_and_edges() -> None:
    specs = parse_steps(chain(10))
    check_size(specs, max_steps=10, max_edges=9)
    with pytest.raises(PlanError, match="at most 9 steps"):
        check_size(specs, max_steps=9, max_edges=100)
    with pytest.raises(PlanError, match="at most 8 dependency edges"):
        check_size(specs, max_steps=10, max_edges=8)

"""Unit tests of workflows: plan validation, agent selection, context, the run fold, task templates."""

from __future__ import annotations

import json

import pytest

from sous_events.contracts import Suggestion
from sous_events.envelope import Envelope
from sous_events.events.workflows import (
    WorkflowPlanRejected,
    WorkflowRunRequested,
    WorkflowStageCompleted,
    WorkflowStageStarted,
)
from sous_events.registry import make_event
from sous_executor.domain.planning import build_plan, parse_steps
from sous_executor.workflows.context import generated_recipe, neutral, subtask_context
from sous_executor.workflows.model import WorkflowRun
from sous_executor.workflows.plan import validate_plan
from sous_executor.workflows.selection import NoAgent, select_agents
from sous_executor.workflows.service import check_task_template, render_task
from sous_service.errors import InputInvalid

pytestmark = pytest.mark.unit


def plan(*subtasks: dict[str, object]) -> str:
    return json.dumps({"summary": "s", "subtasks": list(subtasks)})


def subtask(sid: str, deps: list[str] | None = None, skills: list[str] | None = None) -> dict[str, object]:
    return {"id": sid, "title": sid, "description": f"do {sid}", "skills": skills or [], "depends_on": deps or []}


def test_a_valid_plan_is_accepted():
    found, errors = validate_plan(plan(subtask("a"), subtask("b", ["a"])), 6)
    assert errors == [] and found is not None and [s["id"] for s in found["subtasks"]] == ["a", "b"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not json", "(root): not valid JSON"),
        ("", "(root): the reply is empty"),
        (json.dumps({"summary": "s"}), "(root): 'subtasks' is a required property"),
        (plan({"id": "a", "title": "a", "description": "", "skills": [], "depends_on": []}), "subtasks[0].description"),
        (plan(subtask("a"), subtask("a")), "subtasks[1].id: duplicate id 'a'"),
        (plan(subtask("a", ["zz"])), "subtasks[0].depends_on: unknown subtask 'zz'"),
        (plan(subtask("a", ["b"]), subtask("b", ["a"])), "subtasks: dependency cycle"),
        (plan(subtask("a"), subtask("b"), subtask("c")), "subtasks: [{"),
    ],
)
def test_invalid_plans_are_explained_with_field_paths(raw: str, expected: str):
    found, errors = validate_plan(raw, 2)
    assert found is None or errors
    assert any(e.startswith(expected) for e in errors), errors


def test_agents_are_chosen_by_skills_then_by_their_track_record():
    agents = [
        {"id": "w", "name": "writer", "skills": []},
        {"id": "c", "name": "counter", "skills": ["calculator"]},
        {"id": "x", "name": "another", "skills": []},
    ]
    metrics = {"x": {"runs": 10, "success_rate": 0.9}, "w": {"runs": 10, "success_rate": 0.2}}
    chosen = select_agents([subtask("a", skills=["calculator"]), subtask("b")], agents, metrics)
    assert [c["agent_id"] for c in chosen] == ["c", "x"]
    assert "covers 1/1 required skills" in chosen[0]["reason"]
    assert "success rate 0.90 over 10 runs" in chosen[1]["reason"]
    limited = select_agents([subtask("a", skills=["calculator"])], agents, metrics, allowed_tools=[])
    assert "ignored: calculator" in limited[0]["reason"]
    with pytest.raises(NoAgent):
        select_agents([subtask("a")], [{"id": "d", "name": "d", "status": "disabled"}], {})


def test_contexts_carry_dependencies_memory_and_lessons_and_the_recipe_is_a_valid_dag():
    subtasks = [subtask("a"), subtask("b", ["a"])]
    contexts = [
        subtask_context(
            task="Use {this}",
            subtask=s,
            inputs={"topic": "bread"},
            suggestions=[Suggestion(message="add a tool")],
            memories=[{"run_id": "r0", "snippet": "old {thing}"}],
        )
        for s in subtasks
    ]
    prompt = contexts[1]["prompt"]
    assert "{steps.a.output}" in prompt and "{ this }" in prompt and "old { thing }" in prompt
    assert "Lesson from earlier runs: add a tool" in prompt and "From memory (run r0)" in prompt
    recipe = generated_recipe(
        workflow={"id": "w1", "name": "W", "configuration": {"max_tokens": 100}},
        plan={"summary": "s", "subtasks": subtasks},
        assignments=[{"subtask_id": "a", "agent_id": "g"}, {"subtask_id": "b", "agent_id": "g"}],
        contexts=contexts,
    )
    assert recipe["template_id"] == "workflow-w1" and recipe["execution_config"]["max_tokens"] == 100
    built = build_plan(parse_steps(recipe["steps"]), recipe["execution_config"])
    assert built.mode == "dag" and built.dependencies["b"] == ("a",)
    assert neutral("{input.x} and {y}") == "{ input.x } and { y }"


def event(payload: object, version: int) -> Envelope:
    return make_event(payload, producer="t", workspace_id="ws", aggregate_id="r1", aggregate_version=version)  # type: ignore[arg-type]


def test_a_run_folds_to_its_next_stage_and_keeps_the_execution_it_started():
    events = [
        event(WorkflowRunRequested(run_id="r1", workflow_id="w1", workflow={"name": "W"}, task="t"), 1),
        event(WorkflowStageStarted(run_id="r1", stage=1, name="decomposition"), 2),
        event(WorkflowPlanRejected(run_id="r1", attempt=1, errors=["(root): bad"]), 3),
    ]
    run = WorkflowRun.from_events(events)
    assert run.status == "running" and run.next_stage() is run.stage(1) and run.stage(1).status == "running"
    assert run.view()["current_stage"] == {"number": 1, "name": "decomposition"}
    run.apply(event(WorkflowStageCompleted(run_id="r1", stage=1, name="decomposition", output={"plan": {}}), 4))
    run.apply(
        event(WorkflowStageStarted(run_id="r1", stage=4, name="agent_execution", detail={"execution_id": "e1"}), 5)
    )
    assert run.execution_id == "e1" and run.next_stage() is run.stage(2)
    assert run.view()["stages"][0]["rejected_plans"] == [{"attempt": 1, "errors": ["(root): bad"]}]


def test_task_templates_name_declared_inputs_only():
    check_task_template("About {topic} and {input.topic}", {"topic": {}})
    with pytest.raises(InputInvalid):
        check_task_template("About {other}", {"topic": {}})
    assert render_task("About {topic}: {input.n}", {"topic": "bread", "n": 3}) == "About bread: 3"


def test_every_workflow_route_checks_its_scope_in_the_service():
    from fastapi.routing import APIRoute

    from sous_executor.workflows.api import build_workflow_router

    routes = [r for r in build_workflow_router(object()).routes if isinstance(r, APIRoute)]  # type: ignore[arg-type]
    assert len(routes) == 14
    assert all(route.dependencies for route in routes), [r.path for r in routes if not r.dependencies]


def test_workflow_bodies_bound_tags_and_configuration():
    from pydantic import ValidationError

    from sous_executor.workflows.schemas import WorkflowCreate

    ok = WorkflowCreate.model_validate({"name": "n", "task_template": "t", "tags": ["bread"]})
    assert ok.status == "active" and ok.configuration.max_subtasks == 6
    bad_bodies = (
        {"tags": ["x" * 51]},
        {"configuration": {"max_subtasks": 0}},
        {"status": "paused"},
        {"extra": 1},
        {"task_template": "\x00"},
        {"inputs": {"x": {"default": ["ok", "\x00"]}}},
    )
    for bad in bad_bodies:
        with pytest.raises(ValidationError):
            WorkflowCreate.model_validate({"name": "n", "task_template": "t", **bad})

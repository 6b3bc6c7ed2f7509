"""The offline planner: plans from a workflow planner's request, and invalid ones on directive."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sous_local.model_server.protocol import ChatRequest
from sous_local.model_server.replies import reply_to

pytestmark = pytest.mark.unit

FORMAT = {"type": "json_schema", "json_schema": {"name": "sous_workflow_plan", "schema": {"type": "object"}}}


def ask(task: str, *followups: str, response_format: dict[str, Any] | None = FORMAT) -> str | None:
    messages: list[dict[str, str]] = [
        {"role": "system", "content": "You are the planner."},
        {
            "role": "user",
            "content": f"<task>\n{task}\n</task>\n<tools>calculator, text_stats</tools>\n<max_subtasks>3</max_subtasks>",
        },
    ]
    for followup in followups:
        messages += [{"role": "assistant", "content": "earlier"}, {"role": "user", "content": followup}]
    body: dict[str, Any] = {"model": "sous-offline-1", "messages": messages}
    if response_format is not None:
        body["response_format"] = response_format
    return reply_to(ChatRequest.model_validate(body)).content


def test_a_task_becomes_subtasks_the_last_combining_the_others():
    plan = json.loads(ask("Count words with text_stats ((fail:500:1:k))\nAdd numbers with calculator\nCombine") or "")
    subtasks = plan["subtasks"]
    assert [s["id"] for s in subtasks] == ["s1", "s2", "s3"]
    assert subtasks[0]["skills"] == ["text_stats"] and subtasks[1]["skills"] == ["calculator"]
    assert subtasks[0]["description"].endswith("[[fail:500:1:k]]") and "((" not in subtasks[0]["title"]
    assert [s["depends_on"] for s in subtasks] == [[], [], ["s1", "s2"]]


def test_more_parts_than_allowed_are_folded_into_the_last_subtask():
    plan = json.loads(ask("a; b; c; d; e") or "")
    assert len(plan["subtasks"]) == 3 and plan["subtasks"][2]["description"] == "c; d; e"


def test_invalid_plans_on_directive_until_corrected_n_times():
    assert "not JSON" in (ask("Plan [[plan:invalid]]", "fix it", "fix it") or "")
    assert "not JSON" in (ask("Plan [[plan:invalid:1]]") or "")
    assert json.loads(ask("Plan [[plan:invalid:1]]", "fix it") or "")["subtasks"]
    cyclic = json.loads(ask("a\nb [[plan:cycle]]") or "")["subtasks"]
    assert cyclic[0]["depends_on"] == ["s2"]


def test_other_json_schema_requests_are_answered_as_before():
    other = {"type": "json_schema", "json_schema": {"name": "other", "schema": {"type": "object"}}}
    assert "subtasks" not in json.loads(ask("a", response_format=other) or "{}")

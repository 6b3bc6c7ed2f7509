"""Output-checked retries through the gateway: invalid answers are refused, recorded and retried."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Api, create_agent, create_recipe, run_to_end

R = "/api/workflow-recipes"
TITLE_SCHEMA = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}


async def stored_events(api: Api, template_id: str, execution_id: str) -> list[dict[str, Any]]:
    """The execution's events from its live stream (a finished execution's stream ends after the last one)."""
    response = await api.get(f"{R}/{template_id}/executions/{execution_id}/events")
    assert response.status_code == 200
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]


async def test_an_answer_failing_its_schema_and_regex_passes_on_the_second_attempt(
    make_api: Callable[..., Api],
) -> None:
    api = make_api()
    agent = await create_agent(api)
    key = uuid.uuid4().hex[:8]
    answers = json.dumps(["Here is a title: tides", {"title": "Tides of March"}])
    verdicts = json.dumps([{"score": 0.2, "reason": "too vague"}, {"score": 0.9}])
    retry = {"error_handling": "retry", "max_retries": 2, "retry_delay": 0}
    steps = [
        {
            "step_id": "s1",
            "order": 1,
            "agent_id": agent["id"],
            "prompt_template": f"Title an essay on {{input.topic}} [[answers:{key}-s1 {answers}]]",
            "output_schema": TITLE_SCHEMA,
            "checks": [{"type": "regex", "name": "capitalised", "pattern": '"title":\\s*"[A-Z]'}],
            **retry,
        },
        {
            "step_id": "s2",
            "order": 2,
            "agent_id": agent["id"],
            "prompt_template": "Write an opening line for {steps.s1.output.title}",
            "checks": [
                {"type": "judge", "name": "vivid", "rubric": f"Is it vivid? [[answers:{key}-judge {verdicts}]]"},
                {"type": "contains", "value": "Tides of March"},
            ],
            **retry,
        },
    ]
    recipe = await create_recipe(api, steps)
    finished = await run_to_end(api, recipe["template_id"], {"topic": "the sea"})

    assert finished["status"] == "completed", finished["error_message"]
    results = {r["step_id"]: r for r in finished["step_results"]}
    s1 = results["s1"]
    assert s1["attempt"] == 2
    assert s1["output_json"] == {"title": "Tides of March"}
    assert [f["attempt"] for f in s1["check_failures"]] == [1]
    assert [c["name"] for c in s1["check_failures"][0]["failed_checks"]] == ["output_schema", "capitalised"]
    assert "Offline answer: Write an opening line for Tides of March" in results["s2"]["output"]
    assert results["s2"]["attempt"] == 2
    assert results["s2"]["check_failures"][0]["failed_checks"][0]["score"] == 0.2

    events = await stored_events(api, recipe["template_id"], finished["execution_id"])
    failed = [e["payload"] for e in events if e["event_type"] == "StepFailed"]
    assert [(f["step_id"], f["error_type"], f["will_retry"]) for f in failed] == [
        ("s1", "output_invalid", True),
        ("s2", "output_invalid", True),
    ]
    assert {c["type"] for c in failed[0]["failed_checks"]} == {"json", "regex"}
    retried_prompt = next(
        e["payload"]["prompt"] for e in events if e["event_type"] == "StepStarted" and e["payload"]["attempt"] == 2
    )
    assert "failed these checks" in retried_prompt and "capitalised" in retried_prompt


async def test_a_bad_schema_regex_or_path_is_refused_on_create(make_api: Callable[..., Api]) -> None:
    api = make_api()
    agent = await create_agent(api)
    base = {"step_id": "s1", "order": 1, "agent_id": agent["id"], "prompt_template": "x"}
    cases = [
        ({"output_schema": {"type": "nope"}}, "output_schema"),
        ({"checks": [{"type": "regex", "pattern": "(unclosed"}]}, "checks"),
        ({"checks": [{"type": "json_path", "path": "a..b"}]}, "checks"),
        ({"checks": [{"type": "judge", "rubric": "r", "agent_id": "no-such-agent"}]}, "checks[0].agent_id"),
    ]
    for extra, field in cases:
        body = {
            "template_id": f"r-{uuid.uuid4().hex[:8]}",
            "name": "bad",
            "description": "bad contract",
            "template_definition": {},
            "steps": [{**base, **extra}],
        }
        response = await api.post(R, json=body)
        assert response.status_code == 422, (extra, response.text)
        fields = [e["field"] for e in response.json()["errors"]]
        assert any(field in f for f in fields), (extra, response.json())

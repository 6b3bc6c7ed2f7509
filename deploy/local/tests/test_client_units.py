"""The client commands' pure parts: inputs, the event-stream parser, progress lines, recipe files."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest

from sous_local.client.http import ClientError, Gateway, parse_sse
from sous_local.client.inputs import load_recipe_file, parse_inputs
from sous_local.client.profile import Profile
from sous_local.client.runs import Progress, start_execution
from sous_local.seed import system_recipes

pytestmark = pytest.mark.unit


def test_inputs_take_json_values_and_keep_text_as_text() -> None:
    parsed = parse_inputs(["topic=focaccia", "guests=6", "vegan=true", 'tags=["a"]', "note=", "eq=a=b"])
    assert parsed == {"topic": "focaccia", "guests": 6, "vegan": True, "tags": ["a"], "note": "", "eq": "a=b"}
    with pytest.raises(ClientError):
        parse_inputs(["no-equals-sign"])


def test_sse_blocks_become_events_and_comments_are_ignored() -> None:
    lines = [
        "retry: 1000",
        "",
        ": keep-alive",
        "",
        "id: 3",
        "event: StepStarted",
        'data: {"a": 1}',
        "",
        "data: x",
        "data: y",
        "",
    ]
    events = list(parse_sse(iter(lines)))
    assert [(e.id, e.event, e.data) for e in events] == [("3", "StepStarted", {"a": 1}), ("", "message", "x\ny")]


def test_progress_prints_one_line_per_transition_and_the_result() -> None:
    out = io.StringIO()
    progress = Progress(out)
    for kind, payload in [
        ("ExecutionStarted", {"total_steps": 1}),
        ("StepStarted", {"step_id": "a", "attempt": 1, "agent_name": "writer"}),
        ("StepFailed", {"step_id": "a", "attempt": 1, "error": "boom", "will_retry": True}),
        ("StepRetryScheduled", {"step_id": "a", "next_attempt": 2, "delay_s": 1.25}),
        (
            "StepCompleted",
            {"step_id": "a", "duration_ms": 1500, "tokens": {"total": 7}, "tool_calls": [{"name": "calc"}]},
        ),
        (
            "ExecutionFinished",
            {
                "status": "completed",
                "totals": {"steps_completed": 1, "steps_total": 1, "duration_ms": 2000, "tokens": 7},
            },
        ),
    ]:
        progress.handle({"event_type": kind, "payload": payload})
    lines = out.getvalue().splitlines()
    assert lines[1].split() == ["a", "started", "(attempt", "1,", "writer)"]
    assert "failed on attempt 1: boom (will retry)" in lines[2]
    assert lines[3].strip() == "a                retry 2 in 1.2 s".strip()
    assert lines[4].split()[-4:] == ["7", "tokens,", "tools:", "calc"]
    assert lines[-1] == "completed: 1/1 steps, 2.0 s, 7 tokens, $0.000000"
    assert progress.status == "completed"


def test_recipe_files_are_yaml_or_json_and_must_be_one_mapping(tmp_path: Path) -> None:
    yaml_file = tmp_path / "r.yaml"
    yaml_file.write_text("template_id: x\nsteps:\n  - step_id: a\n")
    assert load_recipe_file(yaml_file)["steps"] == [{"step_id": "a"}]
    json_file = tmp_path / "r.json"
    json_file.write_text("[1, 2]")
    with pytest.raises(ClientError, match="one recipe"):
        load_recipe_file(json_file)


def test_the_seeded_recipes_are_valid_system_recipes() -> None:
    from sous_catalog.domain.validation import validate_recipe_fields
    from sous_catalog.schemas import RecipeCreate

    recipes = system_recipes("agent-1")
    assert [r["template_id"] for r in recipes] == [
        "sample-three-step-chain",
        "sample-parallel-fanout",
        "sample-menu-dag",
    ]
    for recipe in recipes:
        data = RecipeCreate.model_validate(recipe).model_dump(mode="json", exclude_none=True)
        assert data["is_system"] is True
        assert validate_recipe_fields(data, creating=True) == []


def test_a_run_whose_answer_was_lost_is_asked_again_under_the_same_idempotency_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("Idempotency-Key"))
        if len(keys) == 1:
            raise httpx.ReadTimeout("the answer was lost", request=request)
        if len(keys) == 2:
            return httpx.Response(503, json={"detail": "upstream unavailable", "code": "unavailable"})
        return httpx.Response(202, json={"execution_id": "e1", "replayed": True})

    monkeypatch.setattr(time, "sleep", lambda _s: None)
    profile = Profile(url="http://gateway", api_key="key")
    with Gateway(profile, transport=httpx.MockTransport(answer)) as gateway:
        started = start_execution(gateway, "recipe", {"topic": "bread"})

    assert started == {"execution_id": "e1", "replayed": True}
    assert len(keys) == 3 and keys[0] is not None and keys[0].startswith("sous-cli-")
    assert set(keys) == {keys[0]}
    with Gateway(profile, transport=httpx.MockTransport(answer)) as gateway:
        start_execution(gateway, "recipe", {})
    assert keys[-1] != keys[0]  # each run its own key

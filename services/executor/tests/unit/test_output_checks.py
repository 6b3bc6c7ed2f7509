"""Output contracts: their validation, each check, JSON paths, feedback and prompt field references."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from sous_executor.domain.output_checks import (
    check_output,
    contract_of,
    feedback,
    judge_verdict,
    output_views,
    parse_json_answer,
    referenced_agents,
)
from sous_executor.domain.prompts import PromptContext, render
from sous_service.json_path import MISSING, JsonPathError, lookup, parse_path
from sous_service.output_checks import JudgeCheck, OutputContract, schema_errors

SCHEMA = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}


def contract(**raw: Any) -> OutputContract:
    return contract_of(raw)


def failed(result: Any) -> list[str]:
    return [f.name for f in result.failures]


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("$.a.b", ("a", "b")),
        ("a.b[0].c", ("a", "b", 0, "c")),
        ("items.2", ("items", 2)),
        ('$["odd key"].x', ("odd key", "x")),
        ("$", ()),
    ],
)
def test_json_paths_parse(path: str, parts: tuple[Any, ...]) -> None:
    assert parse_path(path) == parts


@pytest.mark.parametrize("path", ["", "a..b", "$.a[", "a b"])
def test_bad_json_paths_are_refused(path: str) -> None:
    with pytest.raises(JsonPathError):
        parse_path(path)


def test_lookup_finds_values_and_reports_missing_ones() -> None:
    value = {"a": {"b": [{"c": 3}]}, "n": None}
    assert lookup(value, "$.a.b[0].c") == 3
    assert lookup(value, "n") is None
    assert lookup(value, "a.b[5]") is MISSING
    assert lookup(value, "a.x") is MISSING
    assert lookup("text", "a") is MISSING


def test_a_bad_schema_regex_or_path_is_refused_with_its_field() -> None:
    with pytest.raises(ValidationError) as bad_schema:
        OutputContract.model_validate({"output_schema": {"type": "nope"}})
    assert bad_schema.value.errors()[0]["loc"] == ("output_schema",)
    with pytest.raises(ValidationError) as bad_regex:
        OutputContract.model_validate({"checks": [{"type": "regex", "pattern": "(unclosed"}]})
    assert bad_regex.value.errors()[0]["loc"][:2] == ("checks", 0)
    with pytest.raises(ValidationError):
        OutputContract.model_validate({"checks": [{"type": "json_path", "path": "a..b"}]})
    with pytest.raises(ValidationError):
        OutputContract.model_validate({"checks": [{"type": "length", "min": 5, "max": 2}]})
    with pytest.raises(ValidationError):
        OutputContract.model_validate({"checks": [{"type": "judge", "rubric": "r", "threshold": 2}]})


def test_schema_failure_then_success_returns_canonical_json() -> None:
    c = contract(output_schema=SCHEMA)
    assert failed(check_output(c, "not json")) == ["output_schema"]
    assert failed(check_output(c, '{"name": "x"}')) == ["output_schema"]
    ok = check_output(c, '```json\n{"title":  "Tides"}\n```')
    assert ok.failures == () and ok.value == {"title": "Tides"} and ok.output == '{"title": "Tides"}'


def test_text_checks() -> None:
    c = contract(
        checks=[
            {"type": "regex", "pattern": "^Title: ", "name": "prefix"},
            {"type": "contains", "value": "TIDES", "case_sensitive": False},
            {"type": "not_contains", "value": "lorem"},
            {"type": "length", "min": 12, "max": 40},
        ]
    )
    assert failed(check_output(c, "Title: tides of March")) == []
    assert failed(check_output(c, "tides lorem")) == ["prefix", "not_contains[2]", "length[3]"]
    assert failed(check_output(c, "Title: " + "x" * 50)) == ["contains[1]", "length[3]"]


def test_json_path_assertions() -> None:
    c = contract(
        checks=[
            {"type": "json_path", "path": "$.title", "matches": "^[A-Z]"},
            {"type": "json_path", "path": "$.score", "min": 0, "max": 1},
            {"type": "json_path", "path": "$.kind", "equals": "poem"},
            {"type": "json_path", "path": "$.draft", "exists": False},
        ]
    )
    good = {"title": "Tides", "score": 0.5, "kind": "poem"}
    assert failed(check_output(c, json.dumps(good))) == []
    bad = {"title": "tides", "score": 3, "kind": "essay", "draft": True}
    result = check_output(c, json.dumps(bad))
    assert failed(result) == ["json_path[0]", "json_path[1]", "json_path[2]", "json_path[3]"]
    assert "above 1" in result.failures[1].message
    assert failed(check_output(c, "plain text"))[0] == "output_schema"


def test_judge_verdicts() -> None:
    check = JudgeCheck(type="judge", rubric="short?", threshold=0.6)
    assert judge_verdict(check, "j", '{"score": 0.9, "reason": "fine"}').passed
    low = judge_verdict(check, "j", '{"score": 0.2, "reason": "rambling"}')
    assert not low.passed and low.score == 0.2 and "rambling" in low.message
    assert judge_verdict(check, "j", "I give it 0.7").passed
    assert not judge_verdict(check, "j", "no idea").passed


def test_feedback_names_every_failed_check_and_the_schema() -> None:
    text = feedback([{"name": "prefix", "message": "no match for /^T/"}], SCHEMA)
    assert "prefix: no match for /^T/" in text and '"required": ["title"]' in text


def test_output_views_and_judge_agents() -> None:
    assert output_views('{"a": 1}', "json", []) == {"output_json": {"a": 1}}
    assert output_views("text", "text", []) == {}
    steps = [{"agent_id": "a1", "checks": [{"type": "judge", "rubric": "r", "agent_id": "j1"}]}]
    assert referenced_agents(steps) == {"a1", "j1"}
    assert parse_json_answer(" [1, 2] ") == [1, 2]


def test_prompts_reference_fields_of_a_json_output() -> None:
    ctx = PromptContext(
        inputs={},
        step_outputs={"s1": '{"title": "Tides", "tags": ["sea", "moon"]}', "s2": "plain"},
        order=("s1", "s2", "s3"),
        output_keys={},
        current_step="s3",
    )
    rendered = render("T={steps.s1.output.title} tag={steps.s1.output.tags.1} x={steps.s1.output.nope}", ctx)
    assert rendered.text.startswith("T=Tides tag=moon x=")
    assert rendered.unknown == ("{steps.s1.output.nope}",)
    assert render("{steps.s2.output.a}", ctx).unknown == ("{steps.s2.output.a}",)


@pytest.mark.parametrize(
    "schema",
    [{"$schema": []}, {"$schema": 5}, {"$ref": "https://example.org/s.json"}, {"properties": 3}, ["not", "a dict"]],
)
def test_odd_schemas_are_reported_not_raised(schema: Any) -> None:
    assert schema_errors(schema)


def test_a_local_ref_is_a_usable_schema() -> None:
    assert schema_errors({"$ref": "#/$defs/a", "$defs": {"a": {"type": "string"}}}) == []

"""Unit tests: planning, prompts, backoff, inputs, tools, router, pricing."""

from __future__ import annotations

import random

import pytest

from sous_executor.config import ExecutorSettings
from sous_executor.domain.inputs import resolve_inputs
from sous_executor.domain.planning import PlanError, build_plan, parse_steps
from sous_executor.domain.prompts import PromptContext, render
from sous_executor.domain.retry_policy import backoff_delay
from sous_executor.llm.pricing import cost_usd
from sous_executor.tools.builtin import ToolError, builtin_tools, calculate, json_extract, text_stats
from sous_executor.tools.router import ToolNotAllowed, ToolRouter
from sous_service.errors import InputInvalid

pytestmark = pytest.mark.unit


def steps(*specs: tuple[str, int, list[str]]) -> list[dict[str, object]]:
    return [{"step_id": s, "order": o, "agent_id": "a", "prompt_template": "p", "depends_on": d} for s, o, d in specs]


def test_sequential_plan_runs_one_step_at_a_time_in_order() -> None:
    plan = build_plan(parse_steps(steps(("b", 2, []), ("a", 1, []), ("c", 3, []))), {"mode": "sequential"})
    assert plan.ready(set(), set()) == ["a"]
    assert plan.ready({"a"}, set()) == ["b"]
    assert plan.ready({"a"}, {"b"}) == []
    assert plan.ready({"a", "b"}, set()) == ["c"]


def test_parallel_plan_respects_parallel_limit() -> None:
    plan = build_plan(
        parse_steps(steps(*[(f"s{i}", i, []) for i in range(5)])), {"mode": "parallel", "parallel_limit": 2}
    )
    assert plan.ready(set(), set()) == ["s0", "s1"]
    assert plan.ready({"s0"}, {"s1"}) == ["s2"]


def test_dag_waits_for_all_dependencies_and_runs_branches_together() -> None:
    plan = build_plan(
        parse_steps(steps(("root", 1, []), ("l", 2, ["root"]), ("r", 3, ["root"]), ("join", 4, ["l", "r"]))),
        {"mode": "sequential"},
    )
    assert plan.mode == "dag"
    assert plan.ready(set(), set()) == ["root"]
    assert plan.ready({"root"}, set()) == ["l", "r"]
    assert plan.ready({"root", "l"}, {"r"}) == []
    assert plan.ready({"root", "l", "r"}, set()) == ["join"]
    assert plan.descendants("l") == {"join"}


def test_dag_rejects_cycles_unknown_dependencies_and_unknown_modes() -> None:
    with pytest.raises(PlanError, match="cycle"):
        build_plan(parse_steps(steps(("a", 1, ["b"]), ("b", 2, ["a"]))), {})
    with pytest.raises(PlanError, match="unknown"):
        build_plan(parse_steps(steps(("a", 1, ["zzz"]))), {})
    with pytest.raises(PlanError, match="mode"):
        build_plan(parse_steps(steps(("a", 1, []))), {"mode": "sideways"})
    with pytest.raises(PlanError, match="unique"):
        parse_steps(steps(("a", 1, []), ("a", 2, [])))


def test_skip_is_an_alias_of_continue() -> None:
    raw = [{"step_id": "a", "order": 1, "agent_id": "x", "prompt_template": "", "error_handling": "skip"}]
    assert parse_steps(raw)[0].error_handling == "continue"


def ctx(**outputs: str) -> PromptContext:
    return PromptContext(
        inputs={"topic": "bread", "n": 3, "cfg": {"a": 1}},
        step_outputs={"s1": outputs.get("s1"), "s2": outputs.get("s2"), "s3": None},
        order=("s1", "s2", "s3"),
        output_keys={"summary": "s2"},
        current_step="s3",
    )


def test_prompt_substitution_supports_every_placeholder_form() -> None:
    out = render(
        "{input.topic}/{input.n}/{input.cfg}|{steps.s1.output}|{previous_output}|{step_1_output}|{summary}|{topic}",
        ctx(s1="ONE", s2="TWO"),
    )
    assert out.text == 'bread/3/{"a": 1}|ONE|TWO|ONE|TWO|bread'
    assert out.unknown == ()


def test_unknown_placeholders_are_reported_not_silently_dropped() -> None:
    out = render("{input.missing} {steps.nope.output} {step_9_output} {mystery} {json: 1}", ctx())
    assert out.unknown == ("{input.missing}", "{steps.nope.output}", "{step_9_output}", "{mystery}")
    assert "{mystery}" in out.text and "{json: 1}" in out.text


def test_backoff_grows_exponentially_and_is_capped() -> None:
    assert [backoff_delay(0.1, n, 10) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert backoff_delay(5, 10, 300) == 300
    jittered = backoff_delay(1, 2, 100, jitter=0.1, rng=random.Random(7))
    assert 2 <= jittered <= 2.2
    with pytest.raises(ValueError):
        backoff_delay(1, 0, 10)


def test_recipe_runs_give_a_missing_required_text_input_the_empty_string() -> None:
    declared = {"topic": {"type": "string", "required": True}, "note": {"type": "string"}, "n": {"type": "integer"}}
    assert resolve_inputs(declared, {}, missing_text_as_empty=True) == {"topic": ""}
    assert resolve_inputs(declared, {"topic": "bread"}, missing_text_as_empty=True) == {"topic": "bread"}
    with pytest.raises(InputInvalid) as caught:
        resolve_inputs({"n": {"type": "integer", "required": True}}, {}, missing_text_as_empty=True)
    assert caught.value.errors[0].field == "input_data.n"
    with pytest.raises(InputInvalid):
        resolve_inputs(declared, {})


def test_inputs_defaults_required_and_types() -> None:
    declared = {"n": {"type": "integer", "required": True}, "tone": {"type": "string", "default": "dry"}}
    assert resolve_inputs(declared, {"n": 2}) == {"n": 2, "tone": "dry"}
    with pytest.raises(InputInvalid) as missing:
        resolve_inputs(declared, {})
    assert missing.value.errors[0].field == "input_data.n"
    with pytest.raises(InputInvalid):
        resolve_inputs(declared, {"n": True})
    with pytest.raises(InputInvalid):
        resolve_inputs(declared, {"n": "2"})


def test_calculator_evaluates_arithmetic_safely() -> None:
    assert calculate("(2 + 3) * 4") == 20
    assert calculate("sqrt(16) + 2 ** 3") == 12
    assert calculate("7 / 2") == 3.5
    for hostile in ("__import__('os').system('true')", "open('x')", "[1][0]", "a", "9 ** 99999", "1/0"):
        with pytest.raises(ToolError):
            calculate(hostile)


def test_json_extract_and_text_stats() -> None:
    assert json_extract('{"a": {"b": [1, {"c": "x"}]}}', "a.b[1].c") == "x"
    with pytest.raises(ToolError):
        json_extract({"a": 1}, "b")
    assert text_stats("Hello world. Bye!")["words"] == 3


async def test_router_enforces_skills_and_validates_arguments() -> None:
    router = ToolRouter(builtin_tools())
    ok = await router.call(["calculator"], "calculator", '{"expression": "6*7"}')
    assert ok["result"]["result"] == 42 and ok["error"] is None
    with pytest.raises(ToolNotAllowed) as refused:
        await router.call(["calculator"], "http_get", '{"url": "http://x"}')
    assert "refused" in refused.value.record["error"]
    bad = await router.call(["calculator"], "calculator", '{"expr": "1"}')
    assert bad["result"] is None and "invalid arguments" in bad["error"]
    broken = await router.call(["calculator"], "calculator", "{not json")
    assert "not valid JSON" in broken["error"]
    offered = router.openai_tools(["calculator", "does_not_exist"])
    assert [t["function"]["name"] for t in offered] == ["calculator"]
    blocked = await router.call(["http_get"], "http_get", '{"url": "http://127.0.0.1:1/"}')
    assert "allowlist" in blocked["error"]


def test_pricing_by_model_with_dated_variants_and_unknown_models() -> None:
    prices = {"gpt-4o": {"prompt_per_1k": 0.0025, "completion_per_1k": 0.01}}
    assert cost_usd(prices, "gpt-4o", 1000, 1000) == pytest.approx(0.0125)
    assert cost_usd(prices, "gpt-4o-2024-08-06", 2000, 0) == pytest.approx(0.005)
    assert cost_usd(prices, "mystery", 1000, 1000) == 0.0
    settings = ExecutorSettings(price_table='{"house-model": {"prompt_per_1k": 1, "completion_per_1k": 2}}')
    assert settings.prices["house-model"] == {"prompt_per_1k": 1.0, "completion_per_1k": 2.0}
    assert "gpt-4o-mini" in settings.prices


def test_a_heartbeat_slower_than_half_the_lease_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="SOUS_HEARTBEAT_INTERVAL_S"):
        ExecutorSettings(lease_ttl_s=4, heartbeat_interval_s=5)
    assert ExecutorSettings(lease_ttl_s=4, heartbeat_interval_s=2).heartbeat_interval_s == 2

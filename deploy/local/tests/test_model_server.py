"""The offline model server as a real process, driven by the official openai client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from sous_local.ports import free_port, wait_for_port

pytestmark = pytest.mark.integration

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluates an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}, "precision": {"type": "integer"}},
            "required": ["expression"],
        },
    },
}
TEXT_STATS = {
    "type": "function",
    "function": {
        "name": "text_stats",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string", "default": "hello world"}},
            "required": ["text"],
        },
    },
}


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sous_local.model_server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout_s=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[AsyncOpenAI]:
    # No retries: the failure directives must reach the test, not be absorbed by the client.
    async with AsyncOpenAI(base_url=f"{server_url}/v1", api_key="offline", max_retries=0) as openai_client:
        yield openai_client


async def count_calls(server_url: str, contains: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server_url) as http:
        response = await http.get("/_sous/calls", params={"contains": contains})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def marker() -> str:
    return f"m{uuid.uuid4().hex[:10]}"


async def test_models_include_the_offline_model_and_aliases(client: AsyncOpenAI) -> None:
    names = [model.id async for model in client.models.list()]
    assert names[0] == "sous-offline-1"
    assert "gpt-4o-mini" in names


async def test_equal_requests_get_equal_answers_that_echo_the_prompt(client: AsyncOpenAI) -> None:
    prompt = f"Summarise the quarterly report {marker()}"
    messages: Any = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": prompt}]

    first = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    second = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    answer = first.choices[0].message.content
    assert answer is not None and answer.startswith(f"Offline answer: {prompt} [ref:")
    assert second.choices[0].message.content == answer
    assert first.model == "gpt-4o-mini" and first.id.startswith("chatcmpl-") and first.created > 0
    assert first.choices[0].finish_reason == "stop"
    other = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt + " please"}]
    )
    assert other.choices[0].message.content != answer


async def test_a_later_prompt_embedding_an_earlier_answer_shows_it(client: AsyncOpenAI) -> None:
    phrase = f"bake sourdough {marker()}"
    step_1 = await client.chat.completions.create(
        model="sous-offline-1", messages=[{"role": "user", "content": f"Plan: {phrase} [[latency:1]]"}]
    )
    earlier = step_1.choices[0].message.content or ""
    assert "[[" not in earlier
    step_2 = await client.chat.completions.create(
        model="sous-offline-1", messages=[{"role": "user", "content": f"Review this: {earlier}"}]
    )
    assert phrase in (step_2.choices[0].message.content or "")


async def test_usage_counts_whitespace_words(client: AsyncOpenAI) -> None:
    prompt = f"one two three {marker()}"
    completion = await client.chat.completions.create(
        model="sous-offline-1",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}],
    )
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 2 + 4
    assert usage.completion_tokens == len((completion.choices[0].message.content or "").split())
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    limited = await client.chat.completions.create(
        model="sous-offline-1", messages=[{"role": "user", "content": prompt}], max_tokens=3
    )
    assert limited.choices[0].finish_reason == "length"
    assert limited.choices[0].message.content == "Offline answer: one"
    assert limited.usage is not None and limited.usage.completion_tokens == 3

    reported = await client.chat.completions.create(
        model="sous-offline-1", messages=[{"role": "user", "content": f"{prompt} [[tokens:5000]]"}]
    )
    assert reported.usage is not None and reported.usage.completion_tokens == 5000


async def test_tool_call_round_trip(client: AsyncOpenAI) -> None:
    prompt = f'Add them {marker()} [[tool:calculator {{"expression": "2+3"}}]]'
    messages: list[Any] = [{"role": "user", "content": prompt}]

    first = await client.chat.completions.create(
        model="sous-offline-1", messages=messages, tools=[TEXT_STATS, CALCULATOR]
    )

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.function.name == "calculator"
    assert json.loads(call.function.arguments) == {"expression": "2+3"}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "5"},
    ]
    final = await client.chat.completions.create(
        model="sous-offline-1", messages=messages, tools=[TEXT_STATS, CALCULATOR]
    )
    assert final.choices[0].finish_reason == "stop"
    assert "Tool results: calculator -> 5" in (final.choices[0].message.content or "")


async def test_auto_tool_synthesises_arguments_and_only_offered_tools_are_called(client: AsyncOpenAI) -> None:
    auto = await client.chat.completions.create(
        model="sous-offline-1",
        messages=[{"role": "user", "content": f"Count words {marker()} [[tool:auto]]"}],
        tools=[TEXT_STATS, CALCULATOR],
    )
    calls = auto.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("text_stats", {"text": "hello world"})
    ]

    not_offered = await client.chat.completions.create(
        model="sous-offline-1",
        messages=[{"role": "user", "content": f'Fetch {marker()} [[tool:http_get {{"url": "x"}}]]'}],
        tools=[CALCULATOR],
    )
    assert not_offered.choices[0].message.tool_calls is None

    forced = await client.chat.completions.create(
        model="sous-offline-1",
        messages=[{"role": "user", "content": f'Fetch {marker()} [[tool!:http_get {{"url": "x"}}]]'}],
        tools=[CALCULATOR],
    )
    forced_calls = forced.choices[0].message.tool_calls or []
    assert [c.function.name for c in forced_calls] == ["http_get"]


async def test_fail_500_for_n_calls_then_success(client: AsyncOpenAI, server_url: str) -> None:
    key = marker()
    messages: Any = [{"role": "user", "content": f"Flaky step [[fail:500:2:{key}]]"}]

    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as failure:
            await client.chat.completions.create(model="sous-offline-1", messages=messages)
        assert failure.value.status_code == 500
    success = await client.chat.completions.create(model="sous-offline-1", messages=messages)

    assert success.choices[0].message.content is not None
    assert "Flaky step" in success.choices[0].message.content
    logged = await count_calls(server_url, key)
    assert logged["count"] == 3
    assert [call["status"] for call in logged["calls"]] == [500, 500, 200]


async def test_fail_429_carries_retry_after(client: AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": f"Busy [[fail:429:1:{marker()}]]"}]

    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(model="sous-offline-1", messages=messages)

    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.code == "rate_limit_exceeded"
    await client.chat.completions.create(model="sous-offline-1", messages=messages)


async def test_latency_sleeps_without_blocking_other_calls(client: AsyncOpenAI) -> None:
    async def timed(content: str) -> float:
        started = time.monotonic()
        await client.chat.completions.create(model="sous-offline-1", messages=[{"role": "user", "content": content}])
        return time.monotonic() - started

    slow, fast = await asyncio.gather(timed(f"Slow {marker()} [[latency:800]]"), timed(f"Fast {marker()}"))

    assert slow >= 0.8
    assert fast < slow


async def test_empty_directive_gives_empty_content(client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="sous-offline-1", messages=[{"role": "user", "content": f"Say nothing {marker()} [[empty]]"}]
    )
    assert completion.choices[0].message.content == ""
    assert completion.usage is not None and completion.usage.completion_tokens == 0


async def test_poison_directives_give_a_nul_character_or_a_huge_answer(client: AsyncOpenAI) -> None:
    poisoned = await client.chat.completions.create(
        model="sous-offline-1", messages=[{"role": "user", "content": f"Poison {marker()} [[nul]]"}]
    )
    assert "\x00" in (poisoned.choices[0].message.content or "")
    huge = await client.chat.completions.create(
        model="sous-offline-1", messages=[{"role": "user", "content": f"Big {marker()} [[huge:200000]]"}]
    )
    content = huge.choices[0].message.content or ""
    assert len(content) >= 200_000 and content.startswith("Offline answer: Big")
    assert "\x00" not in content


async def test_streaming_gives_the_same_answer(client: AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": f"Stream this {marker()}"}]
    whole = await client.chat.completions.create(model="sous-offline-1", messages=messages)
    stream = await client.chat.completions.create(
        model="sous-offline-1", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    pieces = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert text == whole.choices[0].message.content
    assert pieces[-1].usage is not None and pieces[-1].usage.total_tokens == whole.usage.total_tokens  # type: ignore[union-attr]


async def test_call_counters_and_reset(client: AsyncOpenAI, server_url: str) -> None:
    step = marker()
    for _ in range(2):
        await client.chat.completions.create(
            model="sous-offline-1", messages=[{"role": "user", "content": f"Step one {step}"}]
        )
    assert (await count_calls(server_url, step))["count"] == 2
    assert (await count_calls(server_url, marker()))["count"] == 0

    async with httpx.AsyncClient(base_url=server_url) as http:
        (await http.post("/_sous/reset")).raise_for_status()
    assert (await count_calls(server_url, step))["count"] == 0


async def test_scripted_answers_follow_their_key_and_counters_show_the_calls(
    client: AsyncOpenAI, server_url: str
) -> None:
    key = f"k{uuid.uuid4().hex[:8]}"
    prompt = f'Write a title [[tag:{key}-step]] [[answers:{key} ["not json", {{"title": "Tides"}}]]]'
    answers = []
    for extra in ("", " again", " and again"):
        completion = await client.chat.completions.create(
            model="sous-offline-1", messages=[{"role": "user", "content": prompt + extra}]
        )
        answers.append(completion.choices[0].message.content)
    assert answers == ["not json", '{"title": "Tides"}', '{"title": "Tides"}']
    async with httpx.AsyncClient() as http:
        counters = (await http.get(f"{server_url}/_sous/counters")).json()
    assert counters["answers"][key] == 3
    assert counters["tags"][f"{key}-step"] == 3


async def test_a_verdict_directive_answers_a_judge_score(client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="sous-offline-1",
        messages=[{"role": "user", "content": f"Rubric: is it short? [[verdict:0.35]] {marker()}"}],
    )
    assert json.loads(completion.choices[0].message.content or "") == {
        "score": 0.35,
        "reason": "offline verdict 0.35",
    }

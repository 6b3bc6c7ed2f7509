"""What the offline model answers: a pure function of the request, so equal requests get equal replies.

Text answers echo the prompt ("Offline answer: <prompt> [ref:<hash>]"), so a later step whose prompt
embeds an earlier step's output visibly carries it. Tool calls follow the prompt's tool directives, one
directive per round (all at once with `[[parallel]]`); once every round has its tool results, the final
answer lists them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sous_local.model_server import directives, planner
from sous_local.model_server.protocol import ChatMessage, ChatRequest, count_tokens, prompt_tokens
from sous_local.model_server.tool_arguments import synthesise

ANSWER_PREFIX = "Offline answer:"
MAX_ECHO_CHARS = 4000
MAX_TOOL_RESULT_CHARS = 1000
MAX_HUGE_CHARS = 64 * 1024 * 1024

FinishReason = Literal["stop", "tool_calls", "length"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def as_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Reply:
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.as_openai() for call in self.tool_calls]
        return message


def request_directives(request: ChatRequest) -> directives.Directives:
    """Directives that shape the whole call (failures, latency, empty, tokens) from system and user text."""
    found = directives.Directives()
    for message in request.messages:
        if message.role in ("system", "developer", "user"):
            found.merge(directives.parse(message.text))
    return found


def system_prompt(request: ChatRequest) -> str:
    return "\n".join(m.text for m in request.messages if m.role in ("system", "developer"))


def reply_to(request: ChatRequest, scripted: str | None = None) -> Reply:
    """`scripted` is the answer an `[[answers:...]]` script owes this call: it wins over everything but tools."""
    reference = hashlib.sha256(request.fingerprint().encode()).hexdigest()[:8]
    found = request_directives(request)
    calls = _tool_calls(request, reference)
    if calls:
        completion = sum(count_tokens(f"{call.name} {call.arguments}") for call in calls)
        return Reply(
            content=None,
            tool_calls=calls,
            finish_reason="tool_calls",
            prompt_tokens=prompt_tokens(request),
            completion_tokens=found.completion_tokens if found.completion_tokens is not None else completion,
        )
    content = "" if found.empty else _poisoned(_answer_text(request, reference), found)
    finish_reason: FinishReason = "stop"
    if scripted is not None:
        content = scripted
    elif found.verdict is not None:
        content = json.dumps({"score": found.verdict, "reason": f"offline verdict {found.verdict:g}"})
    elif planner.is_planner_request(request):
        content = planner.plan_reply(request)
    elif request.response_format and request.response_format.get("type") in ("json_object", "json_schema"):
        content = _as_json(request.response_format, content)
    elif request.token_limit is not None and count_tokens(content) > request.token_limit:
        content = " ".join(content.split()[: request.token_limit])
        finish_reason = "length"
    completion = found.completion_tokens if found.completion_tokens is not None else count_tokens(content)
    return Reply(content, [], finish_reason, prompt_tokens(request), completion)


def _poisoned(text: str, found: directives.Directives) -> str:
    if found.nul:
        text = text.replace(ANSWER_PREFIX, f"{ANSWER_PREFIX} \x00", 1)
    if found.huge_chars is not None:
        missing = min(found.huge_chars, MAX_HUGE_CHARS) - len(text)
        if missing > 0:
            text += " " + ("filler " * (missing // 7 + 1))[:missing]
    return text


def _last_user_index(messages: list[ChatMessage]) -> int:
    return max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)


def _answer_text(request: ChatRequest, reference: str) -> str:
    messages = request.messages
    last_user = _last_user_index(messages)
    prompt = directives.strip(messages[last_user].text) if last_user >= 0 else ""
    if len(prompt) > MAX_ECHO_CHARS:
        prompt = prompt[:MAX_ECHO_CHARS].rsplit(" ", 1)[0] + " …"
    text = f"{ANSWER_PREFIX} {prompt or '(no prompt)'} [ref:{reference}]"
    results = _tool_results(messages[last_user + 1 :])
    if results:
        text += " Tool results: " + "; ".join(f"{name} -> {result}" for name, result in results)
    return text


def _tool_results(turns: list[ChatMessage]) -> list[tuple[str, str]]:
    names: dict[str, str] = {}
    results: list[tuple[str, str]] = []
    for message in turns:
        for call in message.tool_calls or []:
            names[str(call.get("id"))] = str(call.get("function", {}).get("name", "tool"))
        if message.role == "tool":
            name = message.name or names.get(str(message.tool_call_id), "tool")
            results.append((name, " ".join(message.text.split())[:MAX_TOOL_RESULT_CHARS]))
    return results


def _tool_calls(request: ChatRequest, reference: str) -> list[ToolCall]:
    messages = request.messages
    last_user = _last_user_index(messages)
    rounds_done = sum(1 for m in messages[last_user + 1 :] if m.role == "assistant" and m.tool_calls)
    tool_source = [m for m in messages if m.role in ("system", "developer")]
    if last_user >= 0:
        tool_source.append(messages[last_user])
    found = directives.Directives()
    for message in tool_source:
        found.merge(directives.parse(message.text))
    planned = _applicable(request, found.tools)
    batch = _this_round(planned, rounds_done, found.parallel)
    if not batch:
        required = _required_tool(request)
        batch = [required] if required is not None else []
    return [
        ToolCall(_call_id(reference, rounds_done, index), name, arguments)
        for index, (name, arguments) in enumerate(batch)
    ]


def _this_round(planned: list[tuple[str, str]], rounds_done: int, parallel: bool) -> list[tuple[str, str]]:
    if parallel:
        return planned if rounds_done == 0 else []
    return planned[rounds_done : rounds_done + 1]


def _applicable(request: ChatRequest, wanted: list[directives.ToolDirective]) -> list[tuple[str, str]]:
    """(name, JSON arguments) for the directives the model may act on; unknown tools are ignored."""
    offered = request.offered_tools
    calls_disabled = request.tool_choice == "none"
    planned: list[tuple[str, str]] = []
    for directive in wanted:
        name = directive.name
        if directive.forced:
            # Simulates a model that misbehaves, so it ignores what was offered and tool_choice.
            planned.append((name, directive.arguments or _arguments_for(offered.get(name, {}))))
            continue
        if calls_disabled:
            continue
        if name == directives.AUTO_TOOL and offered:
            name = next(iter(offered))
        if name in offered:
            planned.append((name, directive.arguments or _arguments_for(offered[name])))
    return planned


def _required_tool(request: ChatRequest) -> tuple[str, str] | None:
    """tool_choice "required" or a named function obliges a call even without a directive."""
    offered = request.offered_tools
    choice = request.tool_choice
    if choice == "required" and offered:
        name = next(iter(offered))
        return name, _arguments_for(offered[name])
    if isinstance(choice, dict):
        name = str((choice.get("function") or {}).get("name", ""))
        if name in offered:
            return name, _arguments_for(offered[name])
    return None


def _arguments_for(parameters: dict[str, Any]) -> str:
    value = synthesise(parameters) if parameters else {}
    return json.dumps(value if isinstance(value, dict) else {})


def _call_id(reference: str, round_index: int, index: int) -> str:
    return "call_" + hashlib.sha256(f"{reference}:{round_index}:{index}".encode()).hexdigest()[:24]


def _as_json(response_format: dict[str, Any], answer: str) -> str:
    schema = (response_format.get("json_schema") or {}).get("schema")
    if isinstance(schema, dict):
        return json.dumps(synthesise(schema, text=answer, all_properties=True))
    return json.dumps({"answer": answer})

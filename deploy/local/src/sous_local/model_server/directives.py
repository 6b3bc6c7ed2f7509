"""Directives: bracketed instructions in prompts that make the offline model misbehave on purpose.

They let tests (and people trying recipes without a real model) script failures, latency, empty output,
token counts, tool calls, scripted answers (`[[answers:KEY ["first", "later"]]]`), judge verdicts
(`[[verdict:0.8]]`) and call counters (`[[tag:NAME]]`) through the same HTTP path a real provider would take.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_OPEN, _CLOSE = "[[", "]]"
_SIMPLE = re.compile(
    r"(?P<body>fail:(?P<status>[45]\d\d):(?P<times>\d+)(?::(?P<key>[^\[\]]+?))?"
    r"|latency:(?P<latency>\d+)|tokens:(?P<tokens>\d+)|huge:(?P<huge>\d+)"
    r"|verdict:(?P<verdict>\d+(?:\.\d+)?)|tag:(?P<tag>[A-Za-z0-9_.\-]+)|empty|nul|parallel)\]\]"
)
_ANSWERS_HEAD = re.compile(r"answers:(?P<key>[A-Za-z0-9_.\-]+)")
_TOOL_HEAD = re.compile(r"tool(?P<forced>!?):(?P<name>[A-Za-z0-9_.\-]+)")
AUTO_TOOL = "auto"


@dataclass(frozen=True)
class ToolDirective:
    """Call `name` (or the first offered tool when name is `auto`) with `arguments`.

    `arguments` is the JSON text from the prompt, kept verbatim when it is not valid JSON so that
    callers can test their argument validation; None means "synthesise from the tool's schema".
    """

    name: str
    arguments: str | None
    forced: bool


@dataclass(frozen=True)
class FailDirective:
    text: str
    status: int
    times: int
    key: str | None


@dataclass(frozen=True)
class AnswersDirective:
    """Answer the Nth call carrying `key` with `answers[N-1]` (the last one once they run out)."""

    key: str
    answers: tuple[str, ...]


@dataclass
class Directives:
    tools: list[ToolDirective] = field(default_factory=list)
    failures: list[FailDirective] = field(default_factory=list)
    latency_ms: int | None = None
    completion_tokens: int | None = None
    empty: bool = False
    parallel: bool = False
    # Poison outputs for robustness tests: a NUL character in the answer, an answer of at least N characters.
    nul: bool = False
    huge_chars: int | None = None
    answers: list[AnswersDirective] = field(default_factory=list)
    # A judge's verdict: answer `{"score": S, "reason": ...}`.
    verdict: float | None = None
    tags: list[str] = field(default_factory=list)

    def merge(self, other: Directives) -> None:
        self.tools.extend(other.tools)
        self.failures.extend(other.failures)
        self.latency_ms = self.latency_ms if self.latency_ms is not None else other.latency_ms
        if self.completion_tokens is None:
            self.completion_tokens = other.completion_tokens
        self.empty = self.empty or other.empty
        self.parallel = self.parallel or other.parallel
        self.nul = self.nul or other.nul
        self.huge_chars = self.huge_chars if self.huge_chars is not None else other.huge_chars
        self.answers.extend(other.answers)
        self.verdict = self.verdict if self.verdict is not None else other.verdict
        self.tags.extend(t for t in other.tags if t not in self.tags)


def parse(text: str) -> Directives:
    found = Directives()
    for _, _, directive in _scan(text):
        if isinstance(directive, ToolDirective):
            found.tools.append(directive)
        elif isinstance(directive, FailDirective):
            found.failures.append(directive)
        elif isinstance(directive, AnswersDirective):
            found.answers.append(directive)
        else:
            _apply_simple(found, directive)
    return found


def strip(text: str) -> str:
    """The text without its directives, whitespace collapsed, as the model would "read" it."""
    pieces: list[str] = []
    position = 0
    for start, end, _ in _scan(text):
        pieces.append(text[position:start])
        position = end
    pieces.append(text[position:])
    return " ".join("".join(pieces).split())


def _apply_simple(found: Directives, match: re.Match[str]) -> None:
    if match["latency"] is not None and found.latency_ms is None:
        found.latency_ms = int(match["latency"])
    elif match["tokens"] is not None and found.completion_tokens is None:
        found.completion_tokens = int(match["tokens"])
    elif match["huge"] is not None and found.huge_chars is None:
        found.huge_chars = int(match["huge"])
    elif match["verdict"] is not None and found.verdict is None:
        found.verdict = float(match["verdict"])
    elif match["tag"] is not None and match["tag"] not in found.tags:
        found.tags.append(match["tag"])
    elif match["body"] == "empty":
        found.empty = True
    elif match["body"] == "nul":
        found.nul = True
    elif match["body"] == "parallel":
        found.parallel = True


Found = ToolDirective | FailDirective | AnswersDirective | re.Match[str]


def _scan(text: str) -> list[tuple[int, int, Found]]:
    """Every directive in order as (start, end, directive); unknown `[[...]]` text is left alone."""
    found: list[tuple[int, int, Found]] = []
    position = text.find(_OPEN)
    while position != -1:
        body_start = position + len(_OPEN)
        end: int | None = None
        tool = _TOOL_HEAD.match(text, body_start)
        answers = _ANSWERS_HEAD.match(text, body_start)
        if answers is not None:
            scripted = _answers_directive(text, answers)
            if scripted is not None:
                found.append((position, scripted[1], scripted[0]))
                end = scripted[1]
        elif tool is not None:
            parsed = _tool_directive(text, tool)
            if parsed is not None:
                directive, end = parsed
                found.append((position, end, directive))
        else:
            simple = _SIMPLE.match(text, body_start)
            if simple is not None:
                end = simple.end()
                found.append((position, end, _fail_directive(simple) or simple))
        position = text.find(_OPEN, end if end is not None else body_start)
    return found


def _fail_directive(match: re.Match[str]) -> FailDirective | None:
    if match["status"] is None:
        return None
    key = match["key"].strip() if match["key"] else None
    return FailDirective(text=match["body"], status=int(match["status"]), times=int(match["times"]), key=key)


def _tool_directive(text: str, head: re.Match[str]) -> tuple[ToolDirective, int] | None:
    forced, name = head["forced"] == "!", head["name"]
    rest = head.end()
    if text.startswith(_CLOSE, rest):
        return ToolDirective(name, None, forced), rest + len(_CLOSE)
    if not text[rest : rest + 1].isspace():
        return None
    arguments_start = len(text) - len(text[rest:].lstrip())
    # Decoding the JSON first lets arguments contain "]]" (nested arrays) without ending the directive.
    try:
        value, arguments_end = json.JSONDecoder().raw_decode(text, arguments_start)
    except json.JSONDecodeError:
        close = text.find(_CLOSE, arguments_start)
        if close == -1:
            return None
        return ToolDirective(name, text[arguments_start:close].strip(), forced), close + len(_CLOSE)
    close = text.find(_CLOSE, arguments_end)
    if close == -1 or text[arguments_end:close].strip():
        return None
    return ToolDirective(name, json.dumps(value), forced), close + len(_CLOSE)


def _answers_directive(text: str, head: re.Match[str]) -> tuple[AnswersDirective, int] | None:
    """`[[answers:KEY <JSON list>]]`: strings are answered as they are, other values as their JSON."""
    start = len(text) - len(text[head.end() :].lstrip())
    try:
        value, value_end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        return None
    close = text.find(_CLOSE, value_end)
    if not isinstance(value, list) or not value or close == -1 or text[value_end:close].strip():
        return None
    answers = tuple(item if isinstance(item, str) else json.dumps(item) for item in value)
    return AnswersDirective(head["key"], answers), close + len(_CLOSE)

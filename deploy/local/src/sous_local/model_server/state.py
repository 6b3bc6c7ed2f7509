"""What the server remembers between calls: a log of calls for tests, per-key failure budgets, scripted
answer sequences and the counters tests read to prove which prompts reached the model."""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from sous_local.model_server.directives import AnswersDirective, FailDirective

MAX_LOGGED_CALLS = 10_000


@dataclass
class LoggedCall:
    seq: int
    model: str
    text: str
    messages: list[dict[str, Any]]
    status: int | None = None
    # The usage the answer reported (0 for failures), so tests can compare a caller's accounting.
    total_tokens: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "model": self.model,
            "status": self.status,
            "total_tokens": self.total_tokens,
            "messages": self.messages,
        }


class CallLog:
    """Every chat completion received, newest last; bounded so a long `make up` cannot grow without end."""

    def __init__(self) -> None:
        self._calls: deque[LoggedCall] = deque(maxlen=MAX_LOGGED_CALLS)
        self._next_seq = 1

    def record(self, model: str, text: str, messages: list[dict[str, Any]]) -> LoggedCall:
        call = LoggedCall(self._next_seq, model, text, messages)
        self._next_seq += 1
        self._calls.append(call)
        return call

    def matching(self, contains: str | None) -> list[LoggedCall]:
        return [call for call in self._calls if contains is None or contains in call.text]

    def clear(self) -> None:
        self._calls.clear()
        self._next_seq = 1


class FailureBudgets:
    """`[[fail:S:N]]` fails the first N calls carrying it; counted per key, not per request."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def first_due(self, failures: list[FailDirective], system_prompt: str) -> FailDirective | None:
        # Stops at the first directive still failing, so "[[fail:500:1]] [[fail:429:1]]" answers 500, then 429.
        for failure in failures:
            key = failure.key or f"{failure.text}|{hashlib.sha256(system_prompt.encode()).hexdigest()[:12]}"
            self._seen[key] = self._seen.get(key, 0) + 1
            if self._seen[key] <= failure.times:
                return failure
        return None

    def clear(self) -> None:
        self._seen.clear()


class Counters:
    """Calls per `[[tag:NAME]]` and per `[[answers:KEY ...]]` key, since the last reset."""

    def __init__(self) -> None:
        self.tags: dict[str, int] = {}
        self.answers: dict[str, int] = {}

    def count_tags(self, tags: list[str]) -> None:
        for tag in tags:
            self.tags[tag] = self.tags.get(tag, 0) + 1

    def next_answer(self, scripts: list[AnswersDirective]) -> str | None:
        """The answer the first script owes this call (its call count picks the answer); None without scripts."""
        if not scripts:
            return None
        for script in scripts:
            self.answers[script.key] = self.answers.get(script.key, 0) + 1
        first = scripts[0]
        return first.answers[min(self.answers[first.key], len(first.answers)) - 1]

    def as_json(self) -> dict[str, dict[str, int]]:
        return {"tags": dict(self.tags), "answers": dict(self.answers)}

    def clear(self) -> None:
        self.tags.clear()
        self.answers.clear()

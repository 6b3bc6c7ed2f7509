"""Planner replies: a workflow planner's request (response_format json_schema `sous_workflow_plan`) gets a
plan built from its task, so workflows run offline.

The task (between `<task>` and `</task>`) is split into one subtask per line or `;`-separated part; every
subtask but the last is independent and the last depends on all the others. A tool named in `<tools>`
and mentioned in a part becomes a skill of that subtask. `((...))` in a part becomes `[[...]]` in that
subtask's description, so a directive reaches only that subtask's agent and not the planner.

Directives: `[[plan:invalid]]` answers text that is not JSON on every attempt; `[[plan:invalid:N]]` only
while fewer than N corrections were asked for (a correction is a user message after the first one);
`[[plan:cycle]]` answers a plan whose dependencies form a cycle.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sous_local.model_server import directives
from sous_local.model_server.protocol import ChatRequest

SCHEMA_NAME = "sous_workflow_plan"
_TASK = re.compile(r"<task>\s*(?P<task>.*?)\s*</task>", re.S)
_TOOLS = re.compile(r"<tools>(?P<tools>[^<]*)</tools>")
_MAX = re.compile(r"<max_subtasks>(?P<n>\d+)</max_subtasks>")
_INVALID = re.compile(r"\[\[plan:invalid(?::(?P<times>\d+))?\]\]")
_CYCLE = "[[plan:cycle]]"
_ESCAPED = re.compile(r"\(\((?P<body>[^()]*)\)\)")


def is_planner_request(request: ChatRequest) -> bool:
    response_format = request.response_format or {}
    return (
        response_format.get("type") == "json_schema"
        and (response_format.get("json_schema") or {}).get("name") == SCHEMA_NAME
    )


def _first_user_text(request: ChatRequest) -> str:
    return next((m.text for m in request.messages if m.role == "user"), "")


def _corrections(request: ChatRequest) -> int:
    return max(0, sum(1 for m in request.messages if m.role == "user") - 1)


def plan_reply(request: ChatRequest) -> str:
    text = _first_user_text(request)
    invalid = _INVALID.search(text)
    if invalid is not None:
        times = invalid["times"]
        if times is None or _corrections(request) < int(times):
            return "Here is my plan: first research, then write. (not JSON)"
    found = _TASK.search(text)
    task = found["task"] if found else directives.strip(text)
    tools_match = _TOOLS.search(text)
    tools = [t.strip() for t in (tools_match["tools"] if tools_match else "").split(",") if t.strip()]
    limit_match = _MAX.search(text)
    limit = max(1, int(limit_match["n"])) if limit_match else 6
    return json.dumps(build_plan(task, tools, limit, cycle=_CYCLE in text))


def _parts(task: str, limit: int) -> list[str]:
    parts = [p.strip(" -*\t") for line in task.splitlines() for p in line.split(";")]
    parts = [p for p in parts if directives.strip(_INVALID.sub("", p).replace(_CYCLE, ""))]
    if len(parts) > limit:
        parts = [*parts[: limit - 1], "; ".join(parts[limit - 1 :])]
    return parts or ["Answer the task"]


def build_plan(task: str, tools: list[str], limit: int, *, cycle: bool = False) -> dict[str, Any]:
    parts = _parts(task, limit)
    subtasks: list[dict[str, Any]] = []
    for index, raw in enumerate(parts, start=1):
        part = _INVALID.sub("", raw).replace(_CYCLE, "").strip()
        readable = directives.strip(_ESCAPED.sub("", part))
        subtasks.append(
            {
                "id": f"s{index}",
                "title": (readable[:80] or f"Subtask {index}"),
                "description": _ESCAPED.sub(lambda m: "[[" + m["body"] + "]]", part),
                "skills": [tool for tool in tools if tool in part],
                "depends_on": [f"s{i}" for i in range(1, index)] if index == len(parts) and index > 1 else [],
            }
        )
    if cycle and len(subtasks) > 1:
        subtasks[0]["depends_on"] = [subtasks[-1]["id"]]
    summary = f"{len(subtasks)} subtasks" + (", the last combining the others" if len(subtasks) > 1 else "")
    return {"summary": summary, "subtasks": subtasks}

"""The tool router: one entry for every tool call. Enforces skills, validates arguments, truncates results."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from typing import Any

import jsonschema

from sous_executor.tools.builtin import Tool, ToolError


class ToolNotAllowed(Exception):
    """The agent asked for a tool that is not among its skills: refused, and the step fails."""

    def __init__(self, name: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(f"tool {name!r} is not among the agent's skills")
        self.name = name
        self.record: dict[str, Any] = record if record is not None else {"name": name, "error": str(self)}


class ToolRouter:
    def __init__(self, tools: Sequence[Tool], *, max_result_chars: int = 4000) -> None:
        self._tools: dict[str, Tool] = {}
        self.max_result_chars = max_result_chars
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def list_tools(self) -> list[dict[str, Any]]:
        return [
            {"name": t.name, "description": t.description, "provider": t.provider, "parameters": t.parameters}
            for t in sorted(self._tools.values(), key=lambda t: t.name)
        ]

    def has(self, name: str) -> bool:
        return name in self._tools

    def openai_tools(self, skills: Collection[str]) -> list[dict[str, Any]]:
        """OpenAI `tools` for the agent's skills that exist (unknown skills are simply not offered)."""
        return [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for name in skills
            if (t := self._tools.get(name)) is not None
        ]

    async def call(self, skills: Collection[str], name: str, raw_arguments: str | dict[str, Any]) -> dict[str, Any]:
        """Run one tool call; returns a ToolCallRecord dict. Raises ToolNotAllowed outside the skills."""
        started = time.perf_counter()
        record: dict[str, Any] = {"name": name, "arguments": {}, "result": None, "error": None, "duration_ms": 0.0}
        try:
            if name not in skills:
                record["error"] = f"refused: tool {name!r} is not among the agent's skills"
                record["arguments"] = _loose_arguments(raw_arguments)
                raise ToolNotAllowed(name, record)
            tool = self._tools.get(name)
            if tool is None:
                record["error"] = f"unknown tool {name!r}"
                return record
            try:
                arguments = json.loads(raw_arguments) if isinstance(raw_arguments, str) else raw_arguments
            except json.JSONDecodeError as exc:
                record["arguments"] = {"_raw": str(raw_arguments)[:1000]}
                record["error"] = f"arguments are not valid JSON: {exc.msg}"
                return record
            if not isinstance(arguments, dict):
                record["error"] = "arguments must be a JSON object"
                return record
            record["arguments"] = arguments
            try:
                jsonschema.validate(arguments, tool.parameters)
            except jsonschema.ValidationError as exc:
                where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
                record["error"] = f"invalid arguments ({where}): {exc.message}"
                return record
            try:
                record["result"] = self._truncate(await tool.run(arguments))
            except ToolError as exc:
                record["error"] = str(exc)
            except Exception as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
            return record
        finally:
            record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)

    def _truncate(self, result: Any) -> Any:
        text = result if isinstance(result, str) else json.dumps(result, default=str, ensure_ascii=False)
        if len(text) <= self.max_result_chars:
            return result
        return text[: self.max_result_chars] + "…[truncated]"


def _loose_arguments(raw: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw[:1000]}
    return value if isinstance(value, dict) else {"_raw": raw[:1000]}

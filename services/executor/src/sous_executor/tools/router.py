"""The tool router: one entry for every tool call. Enforces skills, validates arguments, truncates results."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import jsonschema

from sous_executor.tools.builtin import Tool, ToolError
from sous_executor.tools.composio import normalize_grants


class ToolNotAllowed(Exception):
    """The agent asked for a tool that is not among its skills: refused, and the step fails."""

    def __init__(self, name: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(f"tool {name!r} is not among the agent's skills")
        self.name = name
        self.record: dict[str, Any] = record if record is not None else {"name": name, "error": str(self)}


class ToolRouter:
    def __init__(
        self,
        tools: Sequence[Tool],
        *,
        max_result_chars: int = 4000,
        toolkit_grants: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self.max_result_chars = max_result_chars
        self._grants = normalize_grants(toolkit_grants or {})
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def _get(self, name: str, workspace_id: str | None) -> Tool | None:
        """A workspace sees built-in tools and the toolkits granted to it; nothing else exists for it."""
        tool = self._tools.get(name)
        if tool is None or tool.toolkit is None:
            return tool
        if workspace_id is None or tool.toolkit not in self._grants.get(workspace_id, frozenset()):
            return None
        return tool

    def list_tools(self, workspace_id: str | None = None) -> list[dict[str, Any]]:
        return [
            {"name": t.name, "description": t.description, "provider": t.provider, "parameters": t.parameters}
            for t in sorted(self._tools.values(), key=lambda t: (t.name.casefold(), t.name))
            if self._get(t.name, workspace_id) is not None
        ]

    def has(self, name: str, workspace_id: str | None = None) -> bool:
        return self._get(name, workspace_id) is not None

    def openai_tools(self, skills: Collection[str], *, workspace_id: str | None = None) -> list[dict[str, Any]]:
        """OpenAI `tools` for the agent's skills that exist (unknown skills are simply not offered)."""
        return [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for name in skills
            if (t := self._get(name, workspace_id)) is not None
        ]

    async def call(
        self,
        skills: Collection[str],
        name: str,
        raw_arguments: str | dict[str, Any],
        *,
        workspace_id: str | None = None,
    ) -> dict[str, Any]:
        """Run one tool call; returns a ToolCallRecord dict. Raises ToolNotAllowed outside the skills."""
        started = time.perf_counter()
        record: dict[str, Any] = {"name": name, "arguments": {}, "result": None, "error": None, "duration_ms": 0.0}
        try:
            if name not in skills:
                record["error"] = f"refused: tool {name!r} is not among the agent's skills"
                record["arguments"] = _loose_arguments(raw_arguments)
                raise ToolNotAllowed(name, record)
            tool = self._get(name, workspace_id)
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
                if tool.run_scoped is not None:
                    if workspace_id is None:
                        raise ToolError("this tool runs for a workspace only")
                    result = await tool.run_scoped(workspace_id, arguments)
                else:
                    result = await tool.run(arguments)
                record["result"] = self._truncate(result)
            except ToolError as exc:
                record["error"] = str(exc)
            except Exception as exc:
                # Exception text from SDKs may carry request details; the type is enough for the model.
                record["error"] = f"the tool failed ({type(exc).__name__})"
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

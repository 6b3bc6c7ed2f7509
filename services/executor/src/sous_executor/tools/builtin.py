"""Built-in tools: deterministic and safe. The calculator walks the AST (no eval)."""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from sous_executor.egress import EgressDenied, EgressPolicy, EgressTransport

ToolFn = Callable[[dict[str, Any]], Awaitable[Any]]
ScopedToolFn = Callable[[str, dict[str, Any]], Awaitable[Any]]
MAX_BODY_BYTES = 1_000_000
MAX_REDIRECTS = 5


class ToolError(Exception):
    """The tool ran and refused or failed; the message is shown to the model and recorded."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: ToolFn
    provider: str = "builtin"
    # Tools acting for a workspace (Composio) get its id; `toolkit` gates them per workspace.
    run_scoped: ScopedToolFn | None = None
    toolkit: str | None = None


# ---------------------------------------------------------------- calculator
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION = 500
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 10**100


def calculate(expression: str) -> float | int:
    """Evaluate an arithmetic expression by walking its syntax tree; anything else is refused."""
    if len(expression) > MAX_EXPRESSION:
        raise ToolError("expression too long")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"invalid expression: {exc.msg}") from exc

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or abs(left) > MAX_MAGNITUDE):
                raise ToolError("exponent too large")
            result = _BINARY[type(node.op)](left, right)
            if isinstance(result, int) and abs(result) > MAX_MAGNITUDE:
                raise ToolError("result too large")
            return result
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and len(node.args) <= 10
        ):
            return _FUNCTIONS[node.func.id](*[ev(a) for a in node.args])
        raise ToolError(f"unsupported expression element: {type(node).__name__}")

    try:
        value = ev(tree)
    except ToolError:
        raise
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise ToolError(f"cannot evaluate: {exc}") from exc
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value  # type: ignore[no-any-return]


async def _calculator(args: dict[str, Any]) -> Any:
    return {"expression": args["expression"], "result": calculate(str(args["expression"]))}


# ---------------------------------------------------------------- json_extract
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def json_extract(document: Any, path: str) -> Any:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise ToolError(f"not valid JSON: {exc.msg}") from exc
    current = document
    for match in _PATH_PART.finditer(path or ""):
        key, index = match.group(1), match.group(2)
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                raise ToolError(f"no index [{index}] at {path!r}")
            current = current[int(index)]
        elif isinstance(current, dict) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            raise ToolError(f"no key {key!r} at {path!r}")
    return current


async def _json_extract(args: dict[str, Any]) -> Any:
    return {"path": args.get("path", ""), "value": json_extract(args["json"], str(args.get("path", "")))}


# ---------------------------------------------------------------- text_stats
def text_stats(text: str) -> dict[str, Any]:
    words = re.findall(r"\b\w+\b", text)
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    return {
        "characters": len(text),
        "words": len(words),
        "lines": len(text.splitlines()) if text else 0,
        "sentences": len(sentences),
        "average_word_length": round(sum(len(w) for w in words) / len(words), 2) if words else 0.0,
    }


async def _text_stats(args: dict[str, Any]) -> Any:
    return text_stats(str(args["text"]))


# ---------------------------------------------------------------- current_time
async def _current_time(args: dict[str, Any]) -> Any:
    name = str(args.get("timezone") or "UTC")
    try:
        zone = UTC if name == "UTC" else ZoneInfo(name)
    except Exception as exc:
        raise ToolError(f"unknown timezone {name!r}") from exc
    now = datetime.now(zone)
    return {"timezone": name, "iso": now.isoformat(), "unix": round(now.timestamp(), 3)}


# ---------------------------------------------------------------- http_get
def make_http_get(policy: EgressPolicy, max_chars: int) -> ToolFn:
    async def _http_get(args: dict[str, Any]) -> Any:
        url = str(args["url"])
        transport = EgressTransport(policy)
        try:
            async with (
                httpx.AsyncClient(
                    transport=transport, timeout=10.0, follow_redirects=True, max_redirects=MAX_REDIRECTS
                ) as client,
                client.stream("GET", url) as response,
            ):
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) >= MAX_BODY_BYTES:
                        break
                text = bytes(body[:MAX_BODY_BYTES]).decode(response.encoding or "utf-8", errors="replace")
        except EgressDenied as exc:
            raise ToolError(f"refused by the HTTP tool allowlist (SOUS_HTTP_TOOL_ALLOWLIST): {exc}") from exc
        except httpx.TooManyRedirects as exc:
            raise ToolError(f"more than {MAX_REDIRECTS} redirects") from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"request failed: {type(exc).__name__}") from exc
        return {"status": response.status_code, "body": text[:max_chars]}

    return _http_get


def builtin_tools(http_policy: EgressPolicy | None = None, max_chars: int = 4000) -> list[Tool]:
    policy = http_policy or EgressPolicy([], block_private=True)
    return [
        Tool(
            "calculator",
            "Evaluate an arithmetic expression (+ - * / // % **, parentheses, sqrt, log, min, max, round, pi, e).",
            {
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "e.g. (2 + 3) * 4"}},
                "required": ["expression"],
                "additionalProperties": False,
            },
            _calculator,
        ),
        Tool(
            "json_extract",
            "Extract a value from a JSON document by a dotted path such as items[0].name.",
            {
                "type": "object",
                "properties": {
                    "json": {"description": "A JSON document (object, array or JSON text)"},
                    "path": {"type": "string", "description": "Dotted path, e.g. a.b[2].c"},
                },
                "required": ["json", "path"],
                "additionalProperties": False,
            },
            _json_extract,
        ),
        Tool(
            "text_stats",
            "Count characters, words, lines and sentences of a text.",
            {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
                "additionalProperties": False,
            },
            _text_stats,
        ),
        Tool(
            "current_time",
            "The current date and time, in UTC or an IANA time zone.",
            {
                "type": "object",
                "properties": {"timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Paris"}},
                "additionalProperties": False,
            },
            _current_time,
        ),
        Tool(
            "http_get",
            "Fetch a URL with HTTP GET (only origins on the operator's allowlist).",
            {
                "type": "object",
                "properties": {"url": {"type": "string", "description": "http(s) URL on an allowed host"}},
                "required": ["url"],
                "additionalProperties": False,
            },
            make_http_get(policy, max_chars),
        ),
    ]

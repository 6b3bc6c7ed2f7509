"""A small JSON path: `$.a.b[0].c`, `a.b.0.c` or `$["odd key"]`; enough to point into a step's JSON answer."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_][A-Za-z0-9_\-]*|\d+)|\[(?P<index>\d+)\]|\[(?P<quote>["'])(?P<key>.*?)(?P=quote)\]"""
)
MISSING = object()


class JsonPathError(ValueError):
    """The path cannot be parsed."""


def parse_path(path: str) -> tuple[str | int, ...]:
    """The path's keys (str) and list indexes (int); `$` alone is the whole value."""
    text = path.strip()
    if not text:
        raise JsonPathError("a path is required")
    if text.startswith("$"):
        text = text[1:]
    elif not text.startswith("["):
        text = "." + text
    parts: list[str | int] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise JsonPathError(f"cannot parse {path!r} at character {position + (len(path) - len(text))}")
        if match["name"] is not None:
            parts.append(int(match["name"]) if match["name"].isdigit() else match["name"])
        elif match["index"] is not None:
            parts.append(int(match["index"]))
        else:
            parts.append(match["key"])
        position = match.end()
    return tuple(parts)


def lookup(value: Any, path: str | tuple[str | int, ...]) -> Any:
    """The value at `path`, or MISSING when any part of it is absent."""
    parts = parse_path(path) if isinstance(path, str) else path
    current = value
    for part in parts:
        if isinstance(current, dict):
            key = str(part)
            if key not in current:
                return MISSING
            current = current[key]
        elif isinstance(current, list) and isinstance(part, int):
            if part >= len(current):
                return MISSING
            current = current[part]
        else:
            return MISSING
    return current

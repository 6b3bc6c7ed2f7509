"""Plausible, deterministic values for a JSON Schema: arguments for `[[tool:auto]]` and JSON output."""

from __future__ import annotations

from typing import Any

_FORMATTED_STRINGS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00",
    "email": "offline@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_MAX_DEPTH = 8


def synthesise(schema: dict[str, Any], text: str = "sample", all_properties: bool = False) -> Any:
    """A value valid for common schemas; objects get their required properties (all if asked)."""
    return _value(schema, schema, text, all_properties, 0)


def _value(schema: Any, root: dict[str, Any], text: str, all_properties: bool, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return text
    schema = _resolve(schema, root)
    for keyword in ("const", "default"):
        if keyword in schema:
            return schema[keyword]
    if schema.get("enum"):
        return schema["enum"][0]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    for keyword in ("anyOf", "oneOf", "allOf"):
        choices = schema.get(keyword)
        if isinstance(choices, list) and choices:
            non_null = [c for c in choices if not (isinstance(c, dict) and c.get("type") == "null")]
            return _value((non_null or choices)[0], root, text, all_properties, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        names = list(properties) if all_properties else list(schema.get("required", []))
        return {name: _value(properties.get(name, {}), root, text, all_properties, depth + 1) for name in names}
    if kind == "array":
        count = 0 if schema.get("maxItems") == 0 else max(1, int(schema.get("minItems", 1)))
        return [_value(schema.get("items", {}), root, text, all_properties, depth + 1) for _ in range(count)]
    if kind in ("number", "integer"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, text)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref")
    if not isinstance(reference, str) or not reference.startswith("#/"):
        return schema
    target: Any = root
    for part in reference[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    value: float = 1
    if "minimum" in schema:
        value = max(value, schema["minimum"]) if "maximum" not in schema else schema["minimum"]
    if "exclusiveMinimum" in schema and isinstance(schema["exclusiveMinimum"], int | float):
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    return int(value) if integer else value


def _string(schema: dict[str, Any], text: str) -> str:
    value = _FORMATTED_STRINGS.get(str(schema.get("format")), text)
    min_length = int(schema.get("minLength", 0))
    if len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    if "maxLength" in schema:
        value = value[: int(schema["maxLength"])]
    return value

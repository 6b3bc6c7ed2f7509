"""JSON Schemas of every event, exported to a checked-in folder, and a backward-compatibility check.

A change is backward compatible when every consumer of the old schema still reads new events and every
new consumer still reads stored old events: no field removed, no new required field, no field whose
type changed. Anything else needs a new schema_version with an upcaster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sous_events.registry import EVENT_SPECS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def current_schemas() -> dict[str, dict[str, Any]]:
    return {
        f"{name}.v{spec.schema_version}": spec.payload.model_json_schema(mode="serialization")
        for name, spec in sorted(EVENT_SPECS.items())
    }


def export(folder: Path = SCHEMA_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, schema in current_schemas().items():
        path = folder / f"{key}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def load_exported(folder: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(root.get("$defs", {}).get(ref.split("/")[-1], {}))
    return schema


def _type_of(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return sorted(json.dumps(_type_of(s, root), sort_keys=True) for s in schema["anyOf"])
    if schema.get("type") == "object" and "properties" in schema:
        return {"object": sorted(schema["properties"])}
    if schema.get("type") == "array":
        return ["array", _type_of(schema.get("items", {}), root)]
    return schema.get("type", "any")


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """Every backward-incompatible difference between two versions of one event's schema."""
    return _compare(old, new, old, new, path)


def _compare(
    old: dict[str, Any], new: dict[str, Any], old_root: dict[str, Any], new_root: dict[str, Any], path: str
) -> list[str]:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems: list[str] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{path}{name}: field removed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{path}{name}: new required field")
    for name, old_field in old_props.items():
        if name not in new_props:
            continue
        new_field = new_props[name]
        if _type_of(old_field, old_root) != _type_of(new_field, new_root):
            old_t, new_t = _type_of(old_field, old_root), _type_of(new_field, new_root)
            both_objects = isinstance(old_t, dict) and isinstance(new_t, dict)
            if not both_objects:
                problems.append(f"{path}{name}: type changed from {old_t} to {new_t}")
        old_r, new_r = _resolve(old_field, old_root), _resolve(new_field, new_root)
        if "properties" in old_r and "properties" in new_r:
            problems.extend(_compare(old_r, new_r, old_root, new_root, f"{path}{name}."))
    return problems


def check_compatibility(folder: Path = SCHEMA_DIR) -> dict[str, list[str]]:
    """Compare the live models with the checked-in schemas; an event missing from the folder is new (fine)."""
    exported = load_exported(folder)
    result: dict[str, list[str]] = {}
    for key, schema in current_schemas().items():
        if key in exported:
            problems = breaking_changes(exported[key], schema)
            if problems:
                result[key] = problems
    for key in exported:
        if key not in current_schemas():
            result[key] = ["event schema removed"]
    return result


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "export":
        for path in export():
            print(path.name)
        return
    problems = check_compatibility()
    for key, items in problems.items():
        for item in items:
            print(f"{key}: {item}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

"""JSON Schemas of every event, exported to a checked-in folder, and a backward-compatibility check.

A change within one schema version is compatible when every consumer of the old schema still reads new
events and every new consumer still reads stored old events. Breaking: a field removed, a field newly
required, a type changed, an enum narrowed, a constraint tightened (a maximum or maxLength added or
lowered, a minimum raised, a pattern added or changed), extra fields refused where they were accepted.
Compatible: a new optional field anywhere (also inside array items and nested snapshots), an enum or a
constraint widened. A breaking change needs a new schema_version with an upcaster from the old one; the
old version's exported schema stays in the folder as the record of what is stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sous_events.registry import EVENT_SPECS, UPCASTERS

SCHEMA_DIR = Path(__file__).parent / "schemas"

# Constraints that a larger value tightens, and those that a smaller value tightens.
_UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_EXACT = ("pattern", "const", "multipleOf", "format")


def current_schemas() -> dict[str, dict[str, Any]]:
    # Validation mode: the schema of what a consumer accepts, which is what a stored event must satisfy.
    return {
        f"{name}.v{spec.schema_version}": spec.payload.model_json_schema(mode="validation")
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
    seen = 0
    while isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/$defs/") and seen < 32:
        schema = dict(root.get("$defs", {}).get(schema["$ref"].split("/")[-1], {}))
        seen += 1
    return schema


def _shape(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """The type of a schema without the details a compatible change may add (fields, constraints)."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return sorted(json.dumps(_shape(s, root), sort_keys=True) for s in schema["anyOf"])
    kind = schema.get("type")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "array":
        return ["array", _shape(schema.get("items", {}), root)]
    if isinstance(kind, list):
        return sorted(kind)
    return kind or "any"


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """Every backward-incompatible difference between two versions of one event's schema."""
    return _compare(old, new, old, new, path)


def _compare(
    old: dict[str, Any], new: dict[str, Any], old_root: dict[str, Any], new_root: dict[str, Any], path: str
) -> list[str]:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    where = path.rstrip(".") or "(payload)"
    old_shape, new_shape = _shape(old, old_root), _shape(new, new_root)
    if old_shape != new_shape:
        return [f"{where}: type changed from {old_shape} to {new_shape}"]
    problems = _constraint_changes(old, new, where)
    if "anyOf" in old and "anyOf" in new:
        new_by_shape = {json.dumps(_shape(s, new_root), sort_keys=True): s for s in new["anyOf"]}
        for branch in old["anyOf"]:
            match = new_by_shape.get(json.dumps(_shape(branch, old_root), sort_keys=True))
            if match is not None:
                problems.extend(_compare(branch, match, old_root, new_root, path))
        return problems
    if old_shape == "object":
        problems.extend(_compare_objects(old, new, old_root, new_root, path))
    elif isinstance(old_shape, list) and old_shape[:1] == ["array"]:
        problems.extend(
            _compare(old.get("items", {}), new.get("items", {}), old_root, new_root, f"{path.rstrip('.')}[].")
        )
    return problems


def _compare_objects(
    old: dict[str, Any], new: dict[str, Any], old_root: dict[str, Any], new_root: dict[str, Any], path: str
) -> list[str]:
    problems: list[str] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{path}{name}: field removed")
    for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        problems.append(f"{path}{name}: " + ("now required" if name in old_props else "new required field"))
    for name, old_field in old_props.items():
        if name in new_props:
            problems.extend(_compare(old_field, new_props[name], old_root, new_root, f"{path}{name}."))
    old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
    if old_extra is not False and new_extra is False:
        problems.append(f"{path.rstrip('.') or '(payload)'}: extra fields no longer accepted")
    elif isinstance(old_extra, dict) and isinstance(new_extra, dict):
        problems.extend(_compare(old_extra, new_extra, old_root, new_root, f"{path}{{*}}."))
    return problems


def _constraint_changes(old: dict[str, Any], new: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for key in _UPPER_BOUNDS:
        if key in new and (key not in old or new[key] < old[key]):
            problems.append(f"{where}: {key} tightened to {new[key]}")
    for key in _LOWER_BOUNDS:
        if key in new and (key not in old or new[key] > old[key]):
            problems.append(f"{where}: {key} tightened to {new[key]}")
    for key in _EXACT:
        if key in new and new.get(key) != old.get(key):
            problems.append(f"{where}: {key} changed to {new[key]!r}")
    if "enum" in new:
        removed = [v for v in old.get("enum", []) if v not in new["enum"]] if "enum" in old else ["(any value)"]
        if removed:
            problems.append(f"{where}: enum narrowed (no longer allows {', '.join(map(str, removed))})")
    return problems


def _upcastable(event_type: str, version: int, target: int) -> bool:
    return all((event_type, v) in UPCASTERS for v in range(version, target))


def check_compatibility(folder: Path = SCHEMA_DIR) -> dict[str, list[str]]:
    """Compare the live models with the checked-in schemas.

    The current version of each event must be compatible with its exported schema and exported as it is
    (so the next change is compared with what the code really is); an older exported version must have
    upcasters up to the current one.
    """
    exported = load_exported(folder)
    current = current_schemas()
    result: dict[str, list[str]] = {}
    for key, schema in current.items():
        if key not in exported:
            result[key] = ["not exported: run `python -m sous_events.schemas export`"]
            continue
        problems = breaking_changes(exported[key], schema)
        if not problems and exported[key] != json.loads(json.dumps(schema)):
            problems = ["exported schema is stale (a compatible change): run `python -m sous_events.schemas export`"]
        if problems:
            result[key] = problems
    for key in exported:
        if key in current:
            continue
        name, _, version = key.rpartition(".v")
        spec = EVENT_SPECS.get(name)
        if spec is None:
            result[key] = ["event schema removed"]
        elif not version.isdigit() or int(version) >= spec.schema_version:
            result[key] = [f"exported version is newer than the registered v{spec.schema_version}"]
        elif not _upcastable(name, int(version), spec.schema_version):
            result[key] = [f"no upcaster chain from v{version} to v{spec.schema_version}"]
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

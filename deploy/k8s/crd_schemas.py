"""Turn the pinned operator CRDs (deploy/k8s/crds/) into JSON Schemas for kubeconform (deploy/k8s/schemas/).

Each served version of each CRD becomes `schemas/<group>/<kind>_<version>.json` (kind lower-cased), the
layout kubeconform finds with `-schema-location 'deploy/k8s/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'`.
The conversion is strict: an object that lists its properties rejects any other key (so a typo fails), unless
the CRD marks it `x-kubernetes-preserve-unknown-fields`. `apiVersion` and `kind` must be exactly those of
the schema, and `metadata` is checked for the fields an object in a manifest may carry.

    python deploy/k8s/crd_schemas.py            # regenerate schemas/ from crds/
    python deploy/k8s/crd_schemas.py --check    # fail if schemas/ or the CRD checksums are out of date
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

K8S_DIR = Path(__file__).resolve().parent
CRDS_DIR = K8S_DIR / "crds"
SCHEMAS_DIR = K8S_DIR / "schemas"
LOCK_FILE = CRDS_DIR / "sources.lock.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# The CRDs are megabytes of YAML: libyaml's loader where PyYAML has it.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Keywords of OpenAPI v3 / Kubernetes structural schemas that JSON Schema does not know (dropped).
_DROPPED = frozenset(
    {
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "nullable",
        "example",
        "externalDocs",
    }
)
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_NAME = {"type": "string", "minLength": 1, "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# What a manifest may set in metadata (the rest is written by the API server).
METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
}


def convert(node: Any, *, strict: bool = True) -> Any:
    """One OpenAPI v3 structural schema node -> a JSON Schema (2020-12) node."""
    if isinstance(node, list):
        return [convert(item, strict=strict) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {name: convert(sub, strict=strict) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = convert(value, strict=strict)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [convert(sub, strict=strict) for sub in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        if "anyOf" not in out:
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-embedded-resource") is True:
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if node.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if strict and not preserve and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def crd_versions(crd: Mapping[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(group, kind, version, JSON Schema) for every served version of a CRD."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        openapi = (version.get("schema") or {}).get("openAPIV3Schema")
        if not openapi:
            continue
        schema = convert(openapi)
        schema["$schema"] = DRAFT
        schema["title"] = f"{kind} {group}/{version['name']}"
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        props["kind"] = {"type": "string", "enum": [kind]}
        props["metadata"] = METADATA_SCHEMA
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
        schema["additionalProperties"] = False
        yield group, kind, version["name"], schema


def load_crds(directory: Path = CRDS_DIR) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(directory.glob("*/*.yaml")):
        with path.open() as handle:
            for doc in yaml.load_all(handle, Loader=_LOADER):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    yield path, doc


def render_schemas(crds_dir: Path = CRDS_DIR) -> dict[Path, str]:
    """Relative path under schemas/ -> file content, for every CRD version."""
    files: dict[Path, str] = {}
    for _, crd in load_crds(crds_dir):
        for group, kind, version, schema in crd_versions(crd):
            files[Path(group) / f"{kind.lower()}_{version}.json"] = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    return files


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_lock(crds_dir: Path = CRDS_DIR, lock_file: Path = LOCK_FILE) -> list[str]:
    """Every CRD file is listed in the lock with its checksum, and nothing else is there."""
    lock: dict[str, Any] = json.loads(lock_file.read_text())
    expected: dict[str, str] = {}
    for source in lock["sources"]:
        for name, digest in source["files"].items():
            expected[f"{source['directory']}/{name}"] = digest
    actual = {str(path.relative_to(crds_dir)): sha256(path) for path in sorted(crds_dir.glob("*/*.yaml"))}
    problems = [f"{name}: not in {lock_file.name}" for name in sorted(set(actual) - set(expected))]
    problems += [f"{name}: listed in {lock_file.name} but missing" for name in sorted(set(expected) - set(actual))]
    problems += [
        f"{name}: sha256 {actual[name]} differs from {expected[name]} in {lock_file.name}"
        for name in sorted(set(actual) & set(expected))
        if actual[name] != expected[name]
    ]
    return problems


def write_schemas(files: Mapping[Path, str], schemas_dir: Path = SCHEMAS_DIR) -> None:
    if schemas_dir.exists():
        shutil.rmtree(schemas_dir)
    for relative, content in files.items():
        target = schemas_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def stale_schemas(files: Mapping[Path, str], schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    actual = {path.relative_to(schemas_dir) for path in schemas_dir.rglob("*.json")} if schemas_dir.exists() else set()
    problems = [f"schemas/{p}: missing" for p in sorted(set(files) - actual)]
    problems += [f"schemas/{p}: no CRD produces it" for p in sorted(actual - set(files))]
    problems += [
        f"schemas/{p}: out of date" for p in sorted(set(files) & actual) if (schemas_dir / p).read_text() != files[p]
    ]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args(argv)
    files = render_schemas()
    if args.check:
        problems = check_lock() + stale_schemas(files)
        for problem in problems:
            print(f"crd-schemas: {problem}", file=sys.stderr)
        if problems:
            print("crd-schemas: run scripts/k8s-crds.sh (or python deploy/k8s/crd_schemas.py)", file=sys.stderr)
            return 1
        print(f"crd-schemas: {len(files)} schemas match the pinned CRDs")
        return 0
    write_schemas(files)
    print(f"crd-schemas: wrote {len(files)} schemas to {SCHEMAS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

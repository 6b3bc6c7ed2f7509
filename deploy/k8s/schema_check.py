"""Validate rendered manifests against JSON Schemas, offline.

Built-in kinds are checked (strictly: unknown fields fail) against the Kubernetes schemas shipped in the
`kubernetes-validate` package; the operator kinds (Strimzi, CloudNativePG, KEDA) against the small schemas
in deploy/k8s/schemas/, which describe the fields Sous uses. A kind with no schema at all is an error.

    python deploy/k8s/schema_check.py rendered.yaml [more.yaml ...] [--kubernetes-version 1.32.0]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_KUBERNETES_VERSION = "1.32.0"

Manifest = dict[str, Any]


def load_custom_schemas(directory: Path = SCHEMAS_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> schema, read from the `const`s of each schema file."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        schema: dict[str, Any] = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        props = schema["properties"]
        schemas[(props["apiVersion"]["const"], props["kind"]["const"])] = schema
    return schemas


def load_documents(paths: Iterable[Path]) -> list[Manifest]:
    docs: list[Manifest] = []
    for path in paths:
        with path.open() as handle:
            docs.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return docs


def _name(doc: Manifest) -> str:
    return f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"


def validate_documents(
    docs: Sequence[Manifest],
    custom: dict[tuple[str, str], dict[str, Any]],
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
) -> tuple[list[str], int, int]:
    """Returns (errors, built-in count, custom count)."""
    errors: list[str] = []
    builtin = crds = 0
    for doc in docs:
        key = (str(doc.get("apiVersion", "")), str(doc.get("kind", "")))
        schema = custom.get(key)
        if schema is not None:
            crds += 1
            validator = jsonschema.Draft202012Validator(schema)
            for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                path = ".".join(str(part) for part in error.absolute_path) or "<root>"
                errors.append(f"{_name(doc)} ({key[0]}): {path}: {error.message}")
            continue
        builtin += 1
        try:
            kubernetes_validate.validate(doc, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "<root>"
            errors.append(f"{_name(doc)} ({key[0]}): {path}: {error.message}")
        except SchemaNotFoundError:
            errors.append(f"{_name(doc)}: no schema for {key[0]} {key[1]} (add one to deploy/k8s/schemas/)")
    return errors, builtin, crds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    args = parser.parse_args(argv)
    docs = load_documents(args.files)
    errors, builtin, crds = validate_documents(docs, load_custom_schemas(), args.kubernetes_version)
    for error in errors:
        print(f"schema: {error}", file=sys.stderr)
    label = ", ".join(str(path) for path in args.files)
    print(
        f"schema: {label}: {builtin} built-in objects (Kubernetes {args.kubernetes_version}, strict), "
        f"{crds} operator objects (deploy/k8s/schemas): {'FAILED' if errors else 'ok'}"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

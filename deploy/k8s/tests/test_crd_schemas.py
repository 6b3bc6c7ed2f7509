"""The operator schemas: derived from the pinned CRDs, strict, and in step with crds/ and its lock."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

pytestmark = pytest.mark.unit

K8S_DIR = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    name = "sous_k8s_crd_schemas"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, K8S_DIR / "crd_schemas.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


crd_schemas = _load()


def schema(group: str, kind: str, version: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((K8S_DIR / "schemas" / group / f"{kind}_{version}.json").read_text())
    return loaded


def errors(doc: dict[str, Any], group: str, kind: str, version: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema(group, kind, version))
    return [error.message for error in validator.iter_errors(doc)]


TOPIC: dict[str, Any] = {
    "apiVersion": "kafka.strimzi.io/v1",
    "kind": "KafkaTopic",
    "metadata": {"name": "sous-quality-v1", "labels": {"strimzi.io/cluster": "sous-kafka"}},
    "spec": {"topicName": "sous.quality.v1", "partitions": 12, "replicas": 3, "config": {"min.insync.replicas": 2}},
}


def test_committed_schemas_match_the_pinned_crds() -> None:
    assert crd_schemas.check_lock() == []
    assert crd_schemas.stale_schemas(crd_schemas.render_schemas()) == []


def test_strimzi_is_served_as_v1_only() -> None:
    strimzi = sorted(p.name for p in (K8S_DIR / "schemas" / "kafka.strimzi.io").glob("*.json"))
    assert strimzi == ["kafka_v1.json", "kafkanodepool_v1.json", "kafkatopic_v1.json", "kafkauser_v1.json"]
    assert errors(TOPIC, "kafka.strimzi.io", "kafkatopic", "v1") == []
    old = {**TOPIC, "apiVersion": "kafka.strimzi.io/v1beta2"}
    assert errors(old, "kafka.strimzi.io", "kafkatopic", "v1")


def test_typos_and_unknown_metadata_fail() -> None:
    typo = copy.deepcopy(TOPIC)
    typo["spec"]["partition"] = typo["spec"].pop("partitions")
    assert any("partition" in e for e in errors(typo, "kafka.strimzi.io", "kafkatopic", "v1"))
    stray = copy.deepcopy(TOPIC)
    stray["metadata"]["uid"] = "x"
    assert errors(stray, "kafka.strimzi.io", "kafkatopic", "v1")


def test_free_form_maps_stay_open() -> None:
    # KafkaTopic.spec.config preserves unknown fields: any Kafka topic setting is accepted.
    doc = copy.deepcopy(TOPIC)
    doc["spec"]["config"]["retention.ms"] = 604800000
    assert errors(doc, "kafka.strimzi.io", "kafkatopic", "v1") == []


def test_conversion_rules() -> None:
    node = {
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "size": {"x-kubernetes-int-or-string": True},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {}}},
            "maybe": {"type": "string", "nullable": True},
            "rules": {"type": "array", "x-kubernetes-validations": [{"rule": "self.size() > 0"}]},
        },
    }
    out = crd_schemas.convert(node)
    assert out["additionalProperties"] is False
    assert out["properties"]["size"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert "additionalProperties" not in out["properties"]["free"]
    assert out["properties"]["maybe"]["type"] == ["string", "null"]
    assert out["properties"]["rules"] == {"type": "array"}
    validator = jsonschema.Draft202012Validator(out)
    assert validator.is_valid({"port": "http", "size": 3, "free": {"b": 1}, "maybe": None})
    assert not validator.is_valid({"port": "http", "typo": 1})


def test_the_lock_catches_an_edited_crd(tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    shutil.copytree(K8S_DIR / "crds", crds)
    assert crd_schemas.check_lock(crds, crds / "sources.lock.json") == []
    edited = next(crds.glob("strimzi-*/*kafkatopic.yaml"))
    edited.write_text(edited.read_text() + "\n# edited\n")
    problems = crd_schemas.check_lock(crds, crds / "sources.lock.json")
    assert len(problems) == 1 and "differs" in problems[0]
    (crds / "extra-1.0").mkdir()
    (crds / "extra-1.0" / "x.yaml").write_text("{}\n")
    assert any("not in" in p for p in crd_schemas.check_lock(crds, crds / "sources.lock.json"))


def test_every_source_is_pinned_with_a_checksum() -> None:
    lock = json.loads((K8S_DIR / "crds" / "sources.lock.json").read_text())
    operators = {source["operator"] for source in lock["sources"]}
    assert {"strimzi", "cloudnative-pg", "barman-cloud", "keda", "prometheus-operator", "gateway-api"} <= operators
    for source in lock["sources"]:
        assert source["version"][0].isdigit(), source
        assert source["checksum"].startswith(("h1:", "api-")), source
        assert source["directory"] == f"{source['operator']}-{source['version']}"

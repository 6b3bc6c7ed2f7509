"""The KafkaUsers of the kafka-tls component grant exactly what the code needs, derived from the code:
the topics each service owns (sous_events.topics: `sous.<service>.*`), the topics and consumer groups of
its consumer specs, the dead-letter twin of each consumed topic, and (the catalog only) what the
dead-letter admin API reads and writes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
import yaml

pytestmark = pytest.mark.unit

USERS = Path(__file__).resolve().parents[1] / "components" / "kafka-tls" / "users.yaml"
Grant = tuple[str, str, str, str]  # (resource type, name, pattern type, operation)


def consumer_specs() -> dict[str, list[Any]]:
    from sous_catalog.bootstrap import SERVICE as CATALOG
    from sous_executor.entrypoints.consumers import replica_consumer, runner_consumer
    from sous_marketplace.bootstrap import SERVICE as MARKETPLACE
    from sous_quality.bootstrap import SERVICE as QUALITY

    return {
        "catalog": [consumer(CATALOG.settings.model_construct(), MagicMock()) for consumer in CATALOG.consumers],
        "executor": [runner_consumer(MagicMock(), MagicMock()), replica_consumer(MagicMock())],
        "quality": [consumer(QUALITY.settings.model_construct(), MagicMock()) for consumer in QUALITY.consumers],
        "marketplace": [
            consumer(MARKETPLACE.settings.model_construct(), MagicMock()) for consumer in MARKETPLACE.consumers
        ],
    }


def grants(resource: str, name: str, operations: Iterable[str], pattern: str = "literal") -> set[Grant]:
    return {(resource, name, pattern, operation) for operation in operations}


def expected_grants() -> dict[str, set[Grant]]:
    from sous_events.dlq_ops import REDRIVE_GROUP
    from sous_events.topics import ALL_TOPICS, dlq_topic

    expected: dict[str, set[Grant]] = {}
    for service, specs in consumer_specs().items():
        owned = [topic for topic in ALL_TOPICS if topic.split(".")[1] == service]
        assert owned, service
        wanted: set[Grant] = set()
        for topic in owned:
            wanted |= grants("topic", topic, ["Write", "Describe"])
        for spec in specs:
            wanted |= grants("group", spec.name, ["Read"])
            for topic in spec.topics:
                wanted |= grants("topic", topic, ["Read", "Describe"])
                wanted |= grants("topic", dlq_topic(topic), ["Write", "Describe"])
        expected[f"sous-{service}"] = wanted
    executions = "sous.executor.executions.v1"
    expected["sous-keda"] = grants("topic", executions, ["Describe"]) | grants(
        "group", "executor-runners", ["Describe"]
    )
    # The dead-letter admin API (sous_service.dlq_api) is answered by the catalog: every .dlq topic, the
    # re-drive group, and the source topics to re-publish to.
    for topic in ALL_TOPICS:
        expected["sous-catalog"] |= grants("topic", dlq_topic(topic), ["Read", "Describe"])
        expected["sous-catalog"] |= grants("topic", topic, ["Write", "Describe"])
    expected["sous-catalog"] |= grants("group", REDRIVE_GROUP, ["Read"])
    return expected


def declared_grants() -> dict[str, set[Grant]]:
    declared: dict[str, set[Grant]] = {}
    for doc in yaml.safe_load_all(USERS.read_text()):
        assert doc["spec"]["authentication"] == {"type": "tls"}, doc["metadata"]["name"]
        assert doc["spec"]["authorization"]["type"] == "simple"
        found: set[Grant] = set()
        for acl in doc["spec"]["authorization"]["acls"]:
            assert acl.get("type", "allow") == "allow"
            resource = acl["resource"]
            found |= grants(
                resource["type"], resource["name"], acl["operations"], resource.get("patternType", "literal")
            )
        declared[doc["metadata"]["name"]] = found
    return declared


def test_each_user_gets_what_its_code_uses_and_nothing_else() -> None:
    declared, expected = declared_grants(), expected_grants()
    assert sorted(declared) == sorted(expected)
    for user, wanted in expected.items():
        assert declared[user] == wanted, (
            user,
            sorted(declared[user] - wanted),
            sorted(wanted - declared[user]),
        )


def test_no_user_may_administer_the_cluster_or_topics() -> None:
    for user, found in declared_grants().items():
        assert not {g for g in found if g[0] == "cluster"}, user
        assert not {g for g in found if g[3] in ("Create", "Delete", "Alter", "AlterConfigs", "All")}, user
        assert not {g for g in found if g[0] == "topic" and g[2] == "prefix"}, user


def test_the_gateway_has_no_kafka_user() -> None:
    # The gateway's own code never opens a Kafka client; if it ever does, it needs a user here.
    gateway_src = Path(__file__).resolve().parents[3] / "gateway" / "src"
    assert not any(
        "aiokafka" in p.read_text() or "sous_events.kafka" in p.read_text() for p in gateway_src.rglob("*.py")
    )
    assert "sous-gateway" not in declared_grants()

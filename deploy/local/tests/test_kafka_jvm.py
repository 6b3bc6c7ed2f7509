"""Unit test: the local Apache Kafka node's JVM options."""

from __future__ import annotations

from pathlib import Path

import pytest

from sous_local.kafka_lane import ApacheKafka

pytestmark = pytest.mark.unit


def test_the_node_runs_on_the_client_jit_with_a_bounded_heap(tmp_path: Path) -> None:
    # With the optimizing tier, the compiler threads were most of the node's CPU through a benchmark's first
    # minutes (docs/benchmarks.md); the client tier measured the same per request.
    command = ApacheKafka(tmp_path, port=19092)._java(tmp_path / "libs")
    assert "-XX:TieredStopAtLevel=1" in command
    assert "-Xmx512m" in command
    assert command[-2:] == ["-cp", f"{tmp_path / 'libs'}/*"]

"""A recipe's learning_data folded in PostgreSQL from LearningRecorded v3 events is the document a v2 event
carried whole: the last 50 analyses' summaries and the latest run's findings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from sous_events import jsontext, learning_fold
from sous_events.envelope import Envelope
from sous_events.learning_fold import fold_in_memory
from sous_events.registry import payload_of

pytestmark = pytest.mark.integration

FOLD_SQL = f"SELECT {learning_fold.folded('$1::jsonb', 2)}"


@pytest.fixture
async def connection(fresh_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(make_url(fresh_database).set(drivername="postgresql").render_as_string(False))
    yield conn
    await conn.close()


def analysis(i: int) -> dict[str, Any]:
    """Run i's analysis as a LearningRecorded v3 writes it (its kinds of findings vary with i)."""
    patterns = [{"type": "retry_needed", "severity": "medium", "description": f"retried {i}", "retries": 1}] * (i % 3)
    suggestions = [{"type": "tool_addition", "priority": "medium", "message": "a tool", "step_id": "a"}] * (i % 2)
    performance = {
        "total_duration_ms": None if i % 4 == 0 else 1000.5 + i,
        "step_durations": [{"step_id": "a", "duration_ms": 12.25}],
        "success_rate": 0.6667,
        "total_retries": i % 3,
        "error_count": 0,
        "total_steps": 3,
        "successful_steps": 2,
        "total_tokens": 1000 + i,
        "total_cost_usd": 0.0,
    }
    return {
        "template_id": "menu",
        "execution_id": f"e{i}",
        "analyzed_at": f"2026-01-01T00:00:{i:02d}+00:00",
        "patterns": patterns,
        "suggestions": suggestions,
        "performance_metrics": performance,
    }


async def fold(connection: asyncpg.Connection, learning_data: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    """One event folded by the statement the services run, read through the registry (upcast)."""
    run = payload_of(envelope).model_dump(mode="json")
    documents = [jsontext.dumps(run[name]) for name in ("patterns", "suggestions", "performance_metrics")]
    text = await connection.fetchval(
        FOLD_SQL, jsontext.dumps(learning_data), run["execution_id"], run["analyzed_at"], *documents
    )
    folded: dict[str, Any] = json.loads(text)
    return folded


def stored(version: int, payload: dict[str, Any], stream_version: int) -> Envelope:
    return Envelope(
        event_type="LearningRecorded",
        schema_version=version,
        producer="quality",
        workspace_id="w",
        aggregate_type="RecipeQuality",
        aggregate_id="w:menu",
        aggregate_version=stream_version,
        payload=payload,
    )


async def test_the_fold_of_v2_and_v3_events_is_what_each_v2_event_carried(connection: asyncpg.Connection) -> None:
    """55 runs: the first 30 stored as v2 (with the learning_data of their time), the rest as v3. Folding the
    events gives, after each, the learning_data a v2 event would have carried: 50 analyses at most, the
    oldest dropped first, and the latest run's findings."""
    expected: dict[str, Any] | None = None
    folded: dict[str, Any] = {}
    for i in range(55):
        run = analysis(i)
        expected = fold_in_memory(expected, run)
        if i < 30:
            without_time = {k: v for k, v in run.items() if k != "analyzed_at"}
            envelope = stored(2, without_time | {"learning_data": expected}, i + 1)
        else:
            envelope = stored(3, run, i + 1)
        folded = await fold(connection, folded, envelope)
        assert folded == expected, f"after run {i}"
    assert [a["execution_id"] for a in folded["analyses"]] == [f"e{i}" for i in range(5, 55)]
    assert folded["last_analyzed_at"] == analysis(54)["analyzed_at"]

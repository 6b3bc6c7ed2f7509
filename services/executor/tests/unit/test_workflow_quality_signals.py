"""The quality verdicts a workflow's stages read are kept without the recipe's whole learning_data (which a
stored v2 LearningRecorded carries)."""

from __future__ import annotations

from typing import Any

import pytest

from sous_events import events as ev
from sous_events.registry import make_event
from sous_executor.workflows import consumers

pytestmark = pytest.mark.unit


async def test_a_learning_signal_keeps_the_runs_findings_not_the_recipes_learning_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept: list[dict[str, Any]] = []

    async def record_signal(session: Any, **signal: Any) -> None:
        kept.append(signal)

    monkeypatch.setattr(consumers.repo, "record_signal", record_signal)
    learned = ev.LearningRecorded(
        template_id="workflow-w1",
        execution_id="e1",
        analyzed_at="t1",
        suggestions=[{"type": "prompt_rewrite", "priority": "high", "message": "shorter"}],
    )
    envelope = make_event(
        learned, producer="quality", workspace_id="ws", aggregate_id="ws:workflow-w1", aggregate_version=2
    )
    await consumers.record_quality_signal(None, envelope, learned)  # type: ignore[arg-type]
    [signal] = kept
    assert signal["kind"] == "learning" and signal["execution_id"] == "e1"
    assert "learning_data" not in signal["payload"]
    assert signal["payload"]["suggestions"][0]["message"] == "shorter"
    assert {"patterns", "performance_metrics"} <= set(signal["payload"])


async def test_the_quality_consumer_does_not_validate_a_learning_events_learning_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept: list[dict[str, Any]] = []

    async def record_signal(session: Any, **signal: Any) -> None:
        kept.append(signal)

    monkeypatch.setattr(consumers.repo, "record_signal", record_signal)
    learned = ev.LearningRecorded(template_id="workflow-w1", execution_id="e1", analyzed_at="t1")
    envelope = make_event(
        learned, producer="quality", workspace_id="ws", aggregate_id="ws:workflow-w1", aggregate_version=2
    )
    # A stored v2 event carries the recipe's last 50 analyses, which the signal never reads.
    v2 = {k: v for k, v in envelope.payload.items() if k != "analyzed_at"} | {"learning_data": {"analyses": "unread"}}
    heavy = envelope.model_copy(update={"schema_version": 2, "payload": v2})
    await consumers.quality_consumer().dispatch()(None, heavy)  # type: ignore[arg-type]
    [signal] = kept
    assert signal["kind"] == "learning" and "learning_data" not in signal["payload"]

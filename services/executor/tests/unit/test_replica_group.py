"""The executor's copies of other services' events are one consumer group: one read of each topic."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

import pytest
from pydantic import Field

from sous_events import driver
from sous_events import events as ev
from sous_events.registry import make_event
from sous_events.topics import QUALITY
from sous_executor.bootstrap import build_app
from sous_executor.config import ExecutorSettings
from sous_executor.entrypoints.consumers import REPLICAS_GROUP, joined_specs, replica_consumer
from sous_executor.workflows.consumers import quality_consumer
from sous_service.runtime import ConsumerSpec


class LearningHeadline(ev.LearningRecorded):
    """A narrower reading of LearningRecorded, as a consumer that skips its analysis would declare."""

    patterns: Any = Field(default=None, exclude=True)


class RecordingSession:
    """Records the statements handlers send to the driver connection of the session's transaction."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []

        async def execute(session: Any, sql: str, *parameters: Any) -> None:
            assert session is self
            self.statements.append(sql)

        monkeypatch.setattr(driver, "execute", execute)


def test_the_quality_topic_is_read_by_one_group_of_the_executor() -> None:
    app = build_app(ExecutorSettings())
    readers = [c for c in app.state.executor.runtime.consumers if QUALITY in c.topics]
    assert [c.name for c in readers] == [REPLICAS_GROUP]
    wanted = {"QualityAssessed", "LearningRecorded", "AgentMetricsUpdated"}
    assert readers[0].event_types is not None and wanted <= readers[0].event_types


async def test_a_verdict_is_copied_as_the_recipes_score_and_as_the_runs_signal_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = replica_consumer(MagicMock(), quality_consumer())
    # v3 carries only its run's analysis, so the signal reads the whole registered payload.
    assert spec.views == {}
    payload = ev.QualityAssessed(
        template_id="recipe", execution_id="e1", quality_score=0.8, rolling_score=0.7, breakdown={}, grade="B"
    )
    envelope = make_event(payload, producer="quality", workspace_id="ws", aggregate_id="ws:recipe", aggregate_version=3)
    session = RecordingSession(monkeypatch)
    await spec.dispatch()(session, envelope)  # type: ignore[arg-type]
    assert [sql.split(" (")[0] for sql in session.statements] == [
        "INSERT INTO recipe_quality_scores",
        "INSERT INTO workflow_quality_signals",
    ]


def test_specs_joined_into_one_group_must_read_a_payload_through_the_same_view() -> None:
    async def handle(*_: Any) -> None:
        return None

    narrowed = ConsumerSpec(
        name="a", handlers={ev.LearningRecorded: handle}, views={ev.LearningRecorded: LearningHeadline}
    )
    whole = ConsumerSpec(name="b", handlers={ev.LearningRecorded: handle})
    with pytest.raises(ValueError, match="different views"):
        joined_specs("ab", narrowed, whole)
    assert joined_specs("aa", narrowed, narrowed).views == {ev.LearningRecorded: LearningHeadline}

"""A recipe's learning_data, folded from LearningRecorded events that carry their run's analysis only (v3),
is what the events carried whole before (v2): live, through the API, and rebuilt from a store holding both."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope, EventPayload
from sous_events.events import ExecutionFinished, ExecutionRequested, StepCompleted, StepFailed
from sous_events.ids import new_id
from sous_events.learning_fold import fold_in_memory
from sous_events.registry import make_event
from sous_events.store import EventStore
from sous_local.testing import unique
from sous_quality import handlers, projections
from sous_quality.adapters import views
from sous_quality.adapters.tables import analyses, recipe_quality
from sous_quality.bootstrap import SERVICE
from sous_quality.domain import recipe_quality as recipe_quality_domain
from sous_quality.entrypoints.consumers import consumer_spec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Sessions = async_sessionmaker[AsyncSession]


class Run:
    """One finished execution of a recipe with auto_learning: `failed` fails its second step after a retry."""

    def __init__(self, workspace_id: str, template_id: str, *, failed: bool) -> None:
        self.workspace_id, self.template_id, self.failed = workspace_id, template_id, failed
        self.execution_id = new_id()
        self.version = 0

    def event(self, payload: EventPayload) -> Envelope:
        self.version += 1
        return make_event(
            payload,
            producer="executor",
            workspace_id=self.workspace_id,
            aggregate_id=self.execution_id,
            aggregate_version=self.version,
        )

    def events(self) -> list[Envelope]:
        ids = {"execution_id": self.execution_id, "template_id": self.template_id}
        recipe = {"template_id": self.template_id, "steps": [{"step_id": "s1"}, {"step_id": "s2"}], "outputs": {}}
        step = {"execution_id": self.execution_id, "agent_id": "", "duration_ms": 10.5}
        second: EventPayload = (
            StepFailed(step_id="s2", order=2, attempt=2, error="boom", **step)
            if self.failed
            else StepCompleted(step_id="s2", order=2, attempt=1, output="fine", **step)
        )
        status = "failed" if self.failed else "completed"
        return [
            self.event(ExecutionRequested(recipe=recipe, agents={}, input_data={}, **ids)),
            self.event(StepCompleted(step_id="s1", order=1, attempt=1, output="ok", **step)),
            self.event(second),
            self.event(ExecutionFinished(status=status, error="boom" if self.failed else None, **ids)),
        ]


async def consume(sessions: Sessions, events: list[Envelope]) -> None:
    """Each event as the quality consumer applies it, one transaction each."""
    spec = consumer_spec("quality-test", handlers.unit_of_works(sessions))
    handle = spec.dispatch()
    assert spec.after_batch is not None
    for envelope in events:
        async with sessions() as session, session.begin():
            await handle(session, envelope)
            await spec.after_batch(session)


async def stream_of(sessions: Sessions, workspace_id: str, template_id: str) -> list[Envelope]:
    async with sessions() as session:
        stream_id = recipe_quality_domain.stream_id(workspace_id, template_id)
        return await EventStore().load(session, recipe_quality_domain.AGGREGATE, stream_id)


async def rows(sessions: Sessions, workspace_id: str) -> tuple[list[Any], list[Any]]:
    async with sessions() as session:
        quality = await session.execute(select(recipe_quality).where(recipe_quality.c.workspace_id == workspace_id))
        learned = select(analyses).where(analyses.c.workspace_id == workspace_id).order_by(analyses.c.execution_id)
        return list(quality.all()), list((await session.execute(learned)).all())


async def test_the_apis_learning_data_after_several_runs_is_the_one_v2_events_carried(quality: Any) -> None:
    _, sessions = quality
    ws, template = unique("ws"), unique("recipe")
    runs = [Run(ws, template, failed=i % 2 == 1) for i in range(4)]
    await consume(sessions, [event for run in runs for event in run.events()])

    stream = await stream_of(sessions, ws, template)
    learned = [e for e in stream if e.event_type == "LearningRecorded"]
    assert [e.payload["execution_id"] for e in learned] == [run.execution_id for run in runs]
    assert {e.schema_version for e in learned} == {3} and not [e for e in learned if "learning_data" in e.payload]
    expected: dict[str, Any] = {}
    for event in learned:
        expected = fold_in_memory(expected, event.payload)
    assert expected["latest_patterns"] and expected["latest_suggestions"]  # the last run failed

    (row,), analysed = await rows(sessions, ws)
    assert row.learning_data == expected and row.version == len(stream) == 8
    assert len(analysed) == 4
    async with sessions() as session:
        answer = await views.suggestions(session, ws, template)
    assert answer == {
        "recipe_id": template,
        "quality_score": row.quality_score,
        "suggestions": expected["latest_suggestions"],
        "patterns": expected["latest_patterns"],
        "performance_metrics": expected["latest_performance"],
        "last_analyzed_at": expected["last_analyzed_at"],
        "analysis_count": 4,
    }


async def test_a_rebuild_from_stored_v2_and_new_v3_events_gives_the_same_rows(quality: Any) -> None:
    """The store holds a recipe's v2 LearningRecorded events (each with the learning_data of its time), then
    runs learned from since (v3): the rebuilt rows are the live ones, and learning_data is what a v2 event
    after all of them would have carried."""
    settings, sessions = quality
    ws, template = unique("ws"), unique("recipe")
    stream_id = recipe_quality_domain.stream_id(ws, template)
    expected: dict[str, Any] = {}
    stored_v2 = []
    for i in range(3):
        run = {
            "template_id": template,
            "execution_id": new_id(),
            "analyzed_at": f"2026-01-0{i + 1}T00:00:00.000001+00:00",
            "patterns": [{"type": "failure", "severity": "high", "description": f"run {i} failed"}] * i,
            "suggestions": [],
            "performance_metrics": {"total_steps": 2, "successful_steps": 2 - i % 2, "success_rate": 1.0 - i / 4},
        }
        expected = fold_in_memory(expected, run)
        payload = {k: v for k, v in run.items() if k != "analyzed_at"} | {"learning_data": expected}
        stored_v2.append(
            Envelope(
                event_type="LearningRecorded",
                schema_version=2,
                producer="quality",
                workspace_id=ws,
                aggregate_type=recipe_quality_domain.AGGREGATE,
                aggregate_id=stream_id,
                aggregate_version=i + 1,
                payload=payload,
            )
        )
    async with sessions() as session, session.begin():
        await EventStore().append(session, stored_v2, expected_version=0)
        for envelope in stored_v2:
            await projections.apply(session, envelope)
    (row,), _ = await rows(sessions, ws)
    assert row.learning_data == expected  # what the v2 projection wrote: the last event's learning_data

    runs = [Run(ws, template, failed=i == 0) for i in range(2)]
    await consume(sessions, [event for run in runs for event in run.events()])
    for event in (await stream_of(sessions, ws, template))[3:]:
        if event.event_type == "LearningRecorded":
            expected = fold_in_memory(expected, event.payload)
    live = await rows(sessions, ws)
    assert live[0][0].learning_data == expected and len(expected["analyses"]) == 5

    await SERVICE.rebuild_from_store(settings)
    assert await rows(sessions, ws) == live


async def test_the_learning_document_is_stored_uncompressed(quality: tuple[Any, Sessions]) -> None:
    """Each learning rewrites the whole document: it is kept out of line without compression (migration 0005)."""
    _, sessions = quality
    async with sessions() as session:
        storage = await session.scalar(
            text(
                "SELECT attstorage::text FROM pg_attribute WHERE attrelid = 'recipe_quality'::regclass AND attname = :c"
            ),
            {"c": "learning_data"},
        )
    assert storage == "e"

"""Agent metrics rebuilt from the event store equal the live ones, even mid-execution.

Each counted step attempt is recorded in the store, not only a summary when the execution finishes: a
rebuild between two AgentMetricsUpdated events must not lose the attempts counted in between.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope, EventPayload
from sous_events.events import (
    ExecutionFinished,
    ExecutionRequested,
    ExecutionStarted,
    StepCompleted,
    StepFailed,
    StepStarted,
)
from sous_events.events.executor import ExecutionTotals, TokenUsage
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_events.store import EventStore
from sous_local.testing import unique
from sous_quality.adapters.tables import agent_metrics
from sous_quality.bootstrap import MIGRATIONS_DIR, rebuild
from sous_quality.config import QualitySettings
from sous_quality.domain.agents import AGGREGATE as AGENT_METRICS
from sous_quality.entrypoints.consumers import consumer_spec
from sous_quality.handlers import QualityHandlers
from sous_service.db import create_engine, create_session_factory
from sous_service.migrate import upgrade_async

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class Run:
    def __init__(self, workspace_id: str, agent_id: str) -> None:
        self.workspace_id = workspace_id
        self.agent_id = agent_id
        self.template_id = unique("recipe")
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
            correlation_id=self.execution_id,
        )

    def begin(self) -> list[Envelope]:
        recipe = {
            "template_id": self.template_id,
            "steps": [{"id": "s1", "agent_id": self.agent_id}],
            "execution_config": {"auto_learning": False},
        }
        return [
            self.event(
                ExecutionRequested(
                    execution_id=self.execution_id, recipe_id=self.template_id, recipe=recipe, agents={}, input_data={}
                )
            ),
            self.event(ExecutionStarted(execution_id=self.execution_id, recipe_id=self.template_id, total_steps=1)),
        ]

    def attempt(self, attempt: int, *, ok: bool, tokens: int) -> list[Envelope]:
        usage = TokenUsage(prompt=tokens // 2, completion=tokens - tokens // 2, total=tokens)
        common: dict[str, Any] = dict(
            execution_id=self.execution_id,
            step_id="s1",
            order=1,
            attempt=attempt,
            agent_id=self.agent_id,
            duration_ms=1234.567,
            tokens=usage,
            cost_usd=0.0012345678,
        )
        outcome: EventPayload = (
            StepCompleted(output="done", **common)
            if ok
            else StepFailed(error="rate limited", will_retry=True, **common)
        )
        started = StepStarted(
            execution_id=self.execution_id, step_id="s1", order=1, attempt=attempt, agent_id=self.agent_id
        )
        return [self.event(started), self.event(outcome)]

    def finish(self) -> Envelope:
        return self.event(
            ExecutionFinished(
                execution_id=self.execution_id,
                recipe_id=self.template_id,
                status="completed",
                output_data={"text": "done"},
                totals=ExecutionTotals(duration_ms=2000.0, tokens=10, cost_usd=0.001, steps_completed=1, steps_total=1),
                step_results=[{"step_id": "s1", "order": 1, "agent_id": self.agent_id, "status": "completed"}],
            )
        )


@pytest.fixture
async def quality(
    infra: Any, fresh_database: str
) -> AsyncIterator[tuple[QualitySettings, async_sessionmaker[AsyncSession]]]:
    settings = QualitySettings(
        env="test",
        database_url=fresh_database,
        database_name="",
        kafka_bootstrap=infra.kafka_bootstrap,
        internal_secret="quality-rebuild-test-secret",
        database_pool_size=2,
    )
    await upgrade_async(settings, MIGRATIONS_DIR)
    engine = create_engine(settings)
    try:
        yield settings, create_session_factory(engine)
    finally:
        await engine.dispose()


async def _apply(sessions: async_sessionmaker[AsyncSession], events: list[Envelope]) -> None:
    """Each event as the consumer applies it, one transaction each."""
    handle = consumer_spec(QualityHandlers(), "quality-rebuild-test").handler
    for envelope in events:
        async with sessions() as session, session.begin():
            await handle(session, envelope)


async def _agent_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    cols = [c for c in agent_metrics.c if c.name != "updated_at"]
    async with sessions() as session:
        return list((await session.execute(select(*cols).order_by(agent_metrics.c.agent_id))).all())


async def test_a_rebuild_keeps_attempts_counted_since_the_last_metrics_event(quality: Any) -> None:
    settings, sessions = quality
    ws, agent = unique("ws"), new_id()

    finished = Run(ws, agent)
    await _apply(sessions, [*finished.begin(), *finished.attempt(1, ok=True, tokens=30), finished.finish()])
    # A second execution of the same agent is still running: one failed attempt that will retry, then a success.
    running = Run(ws, agent)
    await _apply(
        sessions,
        [*running.begin(), *running.attempt(1, ok=False, tokens=100), *running.attempt(2, ok=True, tokens=50)],
    )

    live = await _agent_rows(sessions)
    (row,) = live
    assert (row.runs, row.successes, row.total_tokens) == (2, 2, 180)

    async with sessions() as session:
        stored = len(await EventStore().load(session, AGENT_METRICS, agent))
    assert stored == row.version  # every change of the totals is an event the rebuild can replay

    await rebuild(settings)
    assert await _agent_rows(sessions) == live

"""The write models against their streams: rebuilt state equals the live one, and a stale one decides nothing.

Each counted step attempt is staged durably in the transaction that reads its outcome, and published in the
next AgentMetricsUpdated: a rebuild between two of them must not lose the attempts staged in between. A
decision is recorded at the version of the snapshot row it was made from, so a row behind its stream is
refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope, EventPayload
from sous_events.events import (
    ExecutionFinished,
    ExecutionRequested,
    ExecutionStarted,
    QualityAssessed,
    StepCompleted,
    StepFailed,
    StepStarted,
)
from sous_events.events.executor import ExecutionTotals, TokenUsage
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_events.store import EventStore
from sous_local.testing import unique
from sous_quality import handlers
from sous_quality.adapters.tables import agent_metrics
from sous_quality.bootstrap import SERVICE
from sous_quality.commands import AssessExecution
from sous_quality.domain import recipe_quality
from sous_quality.domain.agents import AGGREGATE as AGENT_METRICS
from sous_quality.entrypoints.agent_metrics import AgentMetricsPublisher
from sous_quality.entrypoints.consumers import consumer_spec
from sous_service.caller import Caller
from sous_service.domain_errors import Conflict

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
            "steps": [{"step_id": "s1", "agent_id": self.agent_id}],
            "execution_config": {"auto_learning": False},
        }
        return [
            self.event(
                ExecutionRequested(
                    execution_id=self.execution_id,
                    template_id=self.template_id,
                    recipe=recipe,
                    agents={},
                    input_data={},
                )
            ),
            self.event(ExecutionStarted(execution_id=self.execution_id, template_id=self.template_id, total_steps=1)),
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
                template_id=self.template_id,
                status="completed",
                output_data={"text": "done"},
                totals=ExecutionTotals(duration_ms=2000.0, tokens=10, cost_usd=0.001, steps_completed=1, steps_total=1),
                step_results=[{"step_id": "s1", "order": 1, "agent_id": self.agent_id, "status": "completed"}],
            )
        )


async def _apply(sessions: async_sessionmaker[AsyncSession], events: list[Envelope]) -> None:
    """Each event as the consumer applies it, one transaction each."""
    spec = consumer_spec("quality-test", handlers.unit_of_works(sessions))
    handle = spec.dispatch()
    assert spec.after_batch is not None
    for envelope in events:
        if envelope.event_type not in handle.event_types:
            continue  # not read by the group (the consumer skips it undecoded)
        async with sessions() as session, session.begin():
            await handle(session, envelope)
            await spec.after_batch(session)


async def _apply_as_one_batch(sessions: async_sessionmaker[AsyncSession], events: list[Envelope]) -> None:
    """The events as one batch of the consumer: one transaction, the batch's end after the last."""
    spec = consumer_spec("quality-test", handlers.unit_of_works(sessions))
    handle = spec.dispatch()
    assert spec.after_batch is not None
    async with sessions() as session, session.begin():
        for envelope in events:
            if envelope.event_type in handle.event_types:
                await handle(session, envelope)
        await spec.after_batch(session)


async def _publish(sessions: async_sessionmaker[AsyncSession]) -> int:
    """One tick of the agents' metrics publisher: the agents published."""
    return await AgentMetricsPublisher(handlers.unit_of_works(sessions), window_s=1.0).tick()


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

    assert await _agent_rows(sessions) == []  # staged, not yet published
    # A rebuild while the attempts are staged loses none of them: they are published after it.
    await SERVICE.rebuild_from_store(settings)
    assert await _publish(sessions) == 1
    assert await _publish(sessions) == 0  # taken: never published twice

    live = await _agent_rows(sessions)
    (row,) = live
    assert (row.runs, row.successes, row.total_tokens, row.version) == (2, 2, 180, 1)

    async with sessions() as session:
        stored = len(await EventStore().load(session, AGENT_METRICS, agent))
    assert stored == row.version  # every change of the totals is an event the rebuild can replay

    await SERVICE.rebuild_from_store(settings)
    assert await _agent_rows(sessions) == live


async def test_a_window_counts_each_agents_attempts_in_one_event_with_the_totals(quality: Any) -> None:
    settings, sessions = quality
    ws, agent, other = unique("ws"), new_id(), new_id()
    first, second, third = Run(ws, agent), Run(ws, agent), Run(ws, other)
    await _apply_as_one_batch(
        sessions,
        [
            *first.begin(),
            *second.begin(),
            *third.begin(),
            *first.attempt(1, ok=False, tokens=100),
            *second.attempt(1, ok=True, tokens=30),
            *third.attempt(1, ok=True, tokens=7),
        ],
    )
    await _apply(sessions, first.attempt(2, ok=True, tokens=50))  # a later batch, in the same window
    assert await _publish(sessions) == 2
    live = await _agent_rows(sessions)
    totals = {row.agent_id: (row.runs, row.successes, row.total_tokens, row.version) for row in live}
    assert totals == {agent: (2, 2, 180, 1), other: (1, 1, 7, 1)}
    async with sessions() as session:
        (event,) = await EventStore().load(session, AGENT_METRICS, agent)
    assert event.payload["metrics"]["runs"] == 2 and event.payload["metrics"]["total_tokens"] == 180

    await SERVICE.rebuild_from_store(settings)
    assert await _agent_rows(sessions) == live


async def test_a_decision_from_a_snapshot_behind_its_stream_is_refused_until_a_rebuild(quality: Any) -> None:
    settings, sessions = quality
    ws = unique("ws")
    run = Run(ws, new_id())
    await _apply(sessions, [*run.begin(), *run.attempt(1, ok=True, tokens=30), run.finish()])  # no auto-learning
    stream = recipe_quality.stream_id(ws, run.template_id)
    # An earlier assessment is in the recipe's stream, but its recipe_quality row never saw it.
    earlier = QualityAssessed(
        template_id=run.template_id,
        execution_id=new_id(),
        quality_score=0.5,
        rolling_score=0.5,
        breakdown={},
        grade="D",
    )
    async with sessions() as session, session.begin():
        event = make_event(earlier, producer="quality", workspace_id=ws, aggregate_id=stream, aggregate_version=1)
        await EventStore().append(session, [event], expected_version=0)

    uows = handlers.unit_of_works(sessions)
    caller = Caller(workspace_id=ws, user_id="user-1")
    assess = AssessExecution(template_id=run.template_id, execution_id=run.execution_id)
    with pytest.raises(Conflict):
        await uows.run(handlers.assess, assess, caller)
    async with sessions() as session:
        assert len(await EventStore().load(session, recipe_quality.AGGREGATE, stream)) == 1

    await SERVICE.rebuild_from_store(
        settings
    )  # the snapshot catches up with its stream, and the rolling score goes on from it
    assessed = await uows.run(handlers.assess, assess, caller)
    assert assessed["rolling_score"] == round(0.3 * assessed["quality_score"] + 0.7 * 0.5, 4)

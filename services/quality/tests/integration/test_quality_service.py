"""The quality service against real PostgreSQL and a real broker, fed executor- and catalog-shaped events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from sous_events import topics
from sous_events.codec import decode, encode, kafka_headers, kafka_key
from sous_events.envelope import Envelope, EventPayload
from sous_events.events import (
    ExecutionFinished,
    ExecutionRequested,
    ExecutionStarted,
    RecipeCreated,
    StepCompleted,
    StepFailed,
    StepRetryScheduled,
    StepStarted,
)
from sous_events.events.executor import ExecutionTotals, TokenUsage
from sous_events.ids import new_id
from sous_events.registry import make_event, topic_for
from sous_events.tables import event_store
from sous_local.testing import statements_sent, unique
from sous_quality.adapters.tables import agent_metrics, analyses, assessments, recipe_quality
from sous_quality.bootstrap import SERVICE, build_app
from sous_quality.config import QualitySettings
from sous_service.internal_client import rebind_hook
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET = "quality-integration-test-secret"
PREFIX = "/api/workflow-recipes"


@dataclass
class Harness:
    client: httpx.AsyncClient
    app: Any
    producer: AIOKafkaProducer
    bootstrap: str
    settings: QualitySettings

    def headers(self, workspace_id: str) -> dict[str, str]:
        ctx = InternalContext(workspace_id=workspace_id, user_id="user-1", scopes=("*",))
        return {CONTEXT_HEADER: sign_context(ctx, SECRET)}

    async def publish(self, *events: Envelope) -> None:
        for event in events:
            await self.producer.send_and_wait(
                topic_for(event.event_type), value=encode(event), key=kafka_key(event), headers=kafka_headers(event)
            )


@pytest.fixture
async def harness(infra: Any, fresh_database: str) -> AsyncIterator[Harness]:
    settings = QualitySettings(
        env="test",
        database_url=fresh_database,
        database_name="",
        kafka_bootstrap=infra.kafka_bootstrap,
        consumer_group=unique("quality"),
        internal_secret=SECRET,
        database_pool_size=3,
        executor_url="",
    )
    await SERVICE.migrate_async(settings)
    app = build_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    async with app.router.lifespan_context(app):
        await producer.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://quality",
                event_hooks={"request": [rebind_hook(settings.internal_secret, "quality")]},
            ) as client:
                yield Harness(client, app, producer, infra.kafka_bootstrap, settings)
        finally:
            await producer.stop()


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


async def agent_totals(bootstrap: str, agent_id: str, runs: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """The agent's metrics in its latest AgentMetricsUpdated, once they count `runs` runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = await quality_events(bootstrap, agent_id, want=1, timeout_s=5.0)
        if events and events[-1].payload["metrics"]["runs"] >= runs:
            metrics: dict[str, Any] = events[-1].payload["metrics"]
            return metrics
    raise AssertionError(f"agent {agent_id} never reached {runs} run(s)")


async def quality_events(
    bootstrap: str, aggregate_id: str, want: int, timeout_s: float = 30.0, settle_s: float = 0.0
) -> list[Envelope]:
    """Events of one stream on the real quality topic, read by a fresh consumer group."""
    consumer = AIOKafkaConsumer(
        topics.QUALITY, bootstrap_servers=bootstrap, group_id=unique("probe"), auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Envelope] = []
    try:
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                for record in records:
                    envelope = decode(record.value)
                    if envelope.aggregate_id == aggregate_id:
                        found.append(envelope)
            if len(found) >= want:
                settle_until = settle_until or time.monotonic() + settle_s
                if time.monotonic() >= settle_until:
                    break
    finally:
        await consumer.stop()
    return found


async def learning_data_of(harness: Harness, workspace_id: str, template_id: str) -> dict[str, Any]:
    """The recipe's learning_data as its quality row holds it."""
    where = (recipe_quality.c.workspace_id == workspace_id) & (recipe_quality.c.template_id == template_id)
    async with harness.app.state.runtime.sessions() as session:
        found: dict[str, Any] = (
            await session.execute(select(recipe_quality.c.learning_data).where(where))
        ).scalar_one()
    return found


class Run:
    """Builds the events of one execution with consecutive aggregate versions."""

    def __init__(self, workspace_id: str, template_id: str) -> None:
        self.workspace_id = workspace_id
        self.template_id = template_id
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


def recipe_event(workspace_id: str, template_id: str, *, auto_learning: bool) -> tuple[Envelope, dict[str, Any]]:
    recipe = {
        "id": new_id(),
        "template_id": template_id,
        "workspace_id": workspace_id,
        "revision": 1,
        "name": "Research brief",
        "steps": [
            {"step_id": "s1", "order": 1, "agent_id": "a1", "prompt_template": "Find {input.topic}"},
            {"step_id": "s2", "order": 2, "agent_id": "a2", "prompt_template": "Draft", "error_handling": "retry"},
            {"step_id": "s3", "order": 3, "agent_id": "a1", "prompt_template": "Check", "error_handling": "continue"},
        ],
        "inputs": {"topic": {"type": "string", "required": True}},
        "outputs": {"summary": {"type": "string"}, "details": {"type": "string"}},
        "execution_config": {"timeout_per_step": 10, "total_timeout": 60, "auto_learning": auto_learning},
    }
    event = make_event(
        RecipeCreated(recipe=recipe),
        producer="catalog",
        workspace_id=workspace_id,
        aggregate_id=recipe["id"],
        aggregate_version=1,
    )
    return event, recipe


def scenario(run: Run, recipe: dict[str, Any], a1: str, a2: str) -> list[Envelope]:
    """s1 completes; s2 fails once and completes on retry; s3 fails (continue); the run completes."""
    eid = run.execution_id
    recipe = {**recipe, "steps": [{**s, "agent_id": a1 if s["agent_id"] == "a1" else a2} for s in recipe["steps"]]}
    agents = {
        a1: {"id": a1, "name": "Researcher", "model_config": {"provider": "openai", "model_id": "small-1"}},
        a2: {"id": a2, "name": "Writer", "model_config": {"provider": "openai", "model_id": "large-2"}},
    }

    def tokens(total: int) -> TokenUsage:
        return TokenUsage(prompt=total // 2, completion=total - total // 2, total=total)

    def result(step_id: str, order: int, agent: str, status: str, attempt: int, **kw: Any) -> dict[str, Any]:
        return {"step_id": step_id, "order": order, "agent_id": agent, "status": status, "attempt": attempt, **kw}

    return [
        run.event(
            ExecutionRequested(
                execution_id=eid,
                template_id=run.template_id,
                recipe=recipe,
                agents=agents,
                input_data={"topic": "tides"},
            )
        ),
        run.event(ExecutionStarted(execution_id=eid, template_id=run.template_id, total_steps=3)),
        run.event(StepStarted(execution_id=eid, step_id="s1", order=1, agent_id=a1)),
        run.event(
            StepCompleted(
                execution_id=eid,
                step_id="s1",
                order=1,
                agent_id=a1,
                output="notes",
                duration_ms=2000.0,
                tokens=tokens(300),
                cost_usd=0.003,
            )
        ),
        run.event(StepStarted(execution_id=eid, step_id="s2", order=2, agent_id=a2)),
        run.event(
            StepFailed(
                execution_id=eid,
                step_id="s2",
                order=2,
                agent_id=a2,
                error="rate limited",
                will_retry=True,
                duration_ms=500.0,
                tokens=tokens(100),
                cost_usd=0.001,
            )
        ),
        run.event(
            StepRetryScheduled(
                execution_id=eid, step_id="s2", next_attempt=2, delay_s=1.0, retry_at="2030-01-01T00:00:00Z"
            )
        ),  # type: ignore[arg-type]
        run.event(StepStarted(execution_id=eid, step_id="s2", order=2, attempt=2, agent_id=a2)),
        run.event(
            StepCompleted(
                execution_id=eid,
                step_id="s2",
                order=2,
                attempt=2,
                agent_id=a2,
                output="draft",
                duration_ms=8000.0,
                tokens=tokens(400),
                cost_usd=0.004,
            )
        ),
        run.event(StepStarted(execution_id=eid, step_id="s3", order=3, agent_id=a1)),
        run.event(
            StepFailed(
                execution_id=eid,
                step_id="s3",
                order=3,
                agent_id=a1,
                error="boom",
                duration_ms=1000.0,
                tokens=tokens(200),
                cost_usd=0.002,
            )
        ),
        run.event(
            ExecutionFinished(
                execution_id=eid,
                template_id=run.template_id,
                status="completed",
                output_data={"summary": "tides explained"},
                totals=ExecutionTotals(
                    duration_ms=20_000.0, tokens=1000, cost_usd=0.01, steps_completed=2, steps_failed=1, steps_total=3
                ),
                step_results=[
                    result(
                        "s1",
                        1,
                        a1,
                        "completed",
                        1,
                        output="notes",
                        duration_ms=2000.0,
                        tokens_used={"prompt": 150, "completion": 150, "total": 300},
                        cost_usd=0.003,
                    ),
                    result(
                        "s2",
                        2,
                        a2,
                        "completed",
                        2,
                        output="draft",
                        duration_ms=8000.0,
                        tokens_used={"prompt": 200, "completion": 200, "total": 400},
                        cost_usd=0.004,
                    ),
                    result(
                        "s3",
                        3,
                        a1,
                        "failed",
                        1,
                        output=None,
                        error="boom",
                        duration_ms=1000.0,
                        tokens_used={"prompt": 100, "completion": 100, "total": 200},
                        cost_usd=0.002,
                    ),
                ],
            )
        ),
    ]


async def test_assess_learn_suggest_history_and_isolation(harness: Harness) -> None:
    ws, other_ws, template = unique("ws"), unique("ws"), unique("recipe")
    a1, a2 = new_id(), new_id()
    created, recipe = recipe_event(ws, template, auto_learning=False)
    run = Run(ws, template)
    events = scenario(run, recipe, a1, a2)
    h = harness.headers(ws)
    await harness.publish(created, *events[:-1])

    # While the run is not finished: 409 (404 until the copy has arrived).
    async def unfinished() -> bool:
        r = await harness.client.post(
            f"{PREFIX}/{template}/assess-quality", json={"execution_id": run.execution_id}, headers=h
        )
        return r.status_code == 409 and r.json()["code"] == "execution_not_finished"

    await eventually(unfinished)
    assert (
        await harness.client.post(f"{PREFIX}/{template}/learn", json={"execution_id": run.execution_id}, headers=h)
    ).status_code == 409
    await harness.publish(events[-1])

    async def assessed() -> dict[str, Any] | None:
        r = await harness.client.post(
            f"{PREFIX}/{template}/assess-quality", json={"execution_id": run.execution_id}, headers=h
        )
        return r.json() if r.status_code == 200 else None

    body = await eventually(assessed)
    # The worked example of test_scoring (computed by hand there): copies of the events give the same record.
    assert body["breakdown"] == {
        "completeness": 0.7333,
        "accuracy": 0.6833,
        "efficiency": 0.9217,
        "reliability": 0.78,
        "cost": 0.848,
    }
    assert body["quality_score"] == 0.7933 and body["grade"] == "B"
    assert body["rolling_score"] == 0.7933  # the first assessment sets it
    assert [(b["type"], b["step_id"], b["step_index"], b["agent_id"]) for b in body["bottlenecks"]] == [
        ("slow_step", "s2", 1, a2),
        ("failed_step", "s3", 2, a1),
    ]
    again = await harness.client.post(
        f"{PREFIX}/{template}/assess-quality", json={"execution_id": run.execution_id}, headers=h
    )
    assert again.json() == body

    learned = await harness.client.post(
        f"{PREFIX}/{template}/learn", json={"execution_id": run.execution_id}, headers=h
    )
    assert learned.status_code == 200
    lb = learned.json()
    assert [(p["type"], p.get("step_id"), p["severity"]) for p in lb["patterns"]] == [
        ("retry_needed", "s2", "medium"),
        ("step_failure", "s3", "high"),
    ]
    assert [(s["type"], s.get("step_id"), s["priority"]) for s in lb["suggestions"]] == [
        ("tool_addition", "s2", "medium"),
        ("prompt_rewrite", "s3", "high"),
        ("model_upgrade", "s3", "medium"),
    ]
    pm = lb["performance_metrics"]
    assert (pm["total_steps"], pm["successful_steps"], pm["total_retries"], pm["error_count"]) == (3, 2, 1, 1)
    assert (pm["total_tokens"], pm["total_duration_ms"], pm["success_rate"]) == (1000, 20_000.0, 0.6667)

    sug = (await harness.client.get(f"{PREFIX}/{template}/suggestions", headers=h)).json()
    assert sug["quality_score"] == 0.7933 and sug["analysis_count"] == 1
    assert sug["suggestions"] == lb["suggestions"] and sug["patterns"] == lb["patterns"]
    assert sug["last_analyzed_at"] == lb["analyzed_at"]

    hist = (await harness.client.get(f"{PREFIX}/{template}/quality/history", headers=h)).json()
    assert [(p["execution_id"], p["quality_score"], p["rolling_score"], p["grade"]) for p in hist["points"]] == [
        (run.execution_id, 0.7933, 0.7933, "B")
    ]
    assert hist["points"][0]["models"] == ["large-2", "small-1"] and hist["points"][0]["recipe_revision"] == 1

    # The events on the real quality topic: QualityAssessed then LearningRecorded, once each.
    stream = await quality_events(harness.bootstrap, f"{ws}:{template}", want=2)
    assert [(e.event_type, e.aggregate_version) for e in stream] == [("QualityAssessed", 1), ("LearningRecorded", 2)]
    assert stream[0].payload["rolling_score"] == 0.7933 and stream[0].payload["template_id"] == template
    # The LearningRecorded carries the run's analysis only; the recipe's learning_data is folded from it.
    assert stream[1].schema_version == 3 and "learning_data" not in stream[1].payload
    assert stream[1].payload["analyzed_at"] == lb["analyzed_at"]
    assert (await learning_data_of(harness, ws, template))["analyses"] == [
        {
            "execution_id": run.execution_id,
            "analyzed_at": lb["analyzed_at"],
            "pattern_count": 2,
            "suggestion_count": 3,
            "performance_metrics": pm,
        }
    ]
    # Agent metrics: a1 ran s1 (ok) and s3 (failed); a2's first attempt will retry, so only its success is a run
    # (the retried failure's tokens count: they were spent). Published once per window, so the attempts may be
    # in one event or more: the latest holds the totals.
    m1 = await agent_totals(harness.bootstrap, a1, runs=2)
    m2 = await agent_totals(harness.bootstrap, a2, runs=1)
    assert (m1["runs"], m1["successes"], m1["success_rate"], m1["mean_duration_ms"], m1["total_tokens"]) == (
        2,
        1,
        0.5,
        1500.0,
        500,
    )
    assert (m2["runs"], m2["successes"], m2["mean_duration_ms"], m2["total_tokens"]) == (1, 1, 8000.0, 500)

    # Another workspace sees nothing of it; no context is 401.
    oh = harness.headers(other_ws)
    routes = [
        ("POST", f"{PREFIX}/{template}/assess-quality", {"execution_id": run.execution_id}),
        ("POST", f"{PREFIX}/{template}/learn", {"execution_id": run.execution_id}),
        ("GET", f"{PREFIX}/{template}/suggestions", None),
        ("GET", f"{PREFIX}/{template}/quality/history", None),
    ]
    for method, path, payload in routes:
        foreign = await harness.client.request(method, path, json=payload, headers=oh)
        assert foreign.status_code == 404, path
        assert set(foreign.json()) == {"detail", "code"}
        assert (await harness.client.request(method, path, json=payload)).status_code == 401
    # An execution of another recipe of the same workspace is 404 too.
    wrong = await harness.client.post(
        f"{PREFIX}/{unique('recipe')}/assess-quality", json={"execution_id": run.execution_id}, headers=h
    )
    assert wrong.status_code == 404


async def test_auto_learning_assesses_once_without_a_call(harness: Harness) -> None:
    ws, template = unique("ws"), unique("recipe")
    a1, a2 = new_id(), new_id()
    created, recipe = recipe_event(ws, template, auto_learning=True)
    first, second = Run(ws, template), Run(ws, template)
    first_events = scenario(first, recipe, a1, a2)
    finished = first_events[-1]
    await harness.publish(created, *first_events, finished)  # the same ExecutionFinished delivered twice

    stream = await quality_events(harness.bootstrap, f"{ws}:{template}", want=2)
    assert [e.event_type for e in stream] == ["QualityAssessed", "LearningRecorded"]
    assert stream[0].payload["execution_id"] == first.execution_id
    first_score = stream[0].payload["quality_score"]
    assert stream[0].payload["rolling_score"] == first_score

    runner = harness.app.state.runtime.consumers[0]

    async def duplicate_seen() -> bool:
        return bool(runner.duplicates >= 1)

    await eventually(duplicate_seen)

    # A second, clean run: the rolling score moves once from the first run's score, not twice.
    second_events = scenario(second, recipe, a1, a2)
    clean = second_events[-1].payload | {
        "step_results": [
            r | {"status": "completed", "output": "ok", "error": None, "attempt": 1}
            for r in second_events[-1].payload["step_results"]
        ],
        "output_data": {"summary": "s", "details": "d"},
    }
    second_events[-1] = second_events[-1].model_copy(update={"payload": clean})
    await harness.publish(*second_events)
    stream = await quality_events(harness.bootstrap, f"{ws}:{template}", want=4, settle_s=1.0)
    assessed = [e for e in stream if e.event_type == "QualityAssessed"]
    assert [e.payload["execution_id"] for e in assessed] == [first.execution_id, second.execution_id]
    second_score = assessed[1].payload["quality_score"]
    assert second_score > first_score
    assert assessed[1].payload["rolling_score"] == round(0.3 * second_score + 0.7 * first_score, 4)

    h = harness.headers(ws)
    hist = (await harness.client.get(f"{PREFIX}/{template}/quality/history", headers=h)).json()
    assert [p["execution_id"] for p in hist["points"]] == [first.execution_id, second.execution_id]
    assert hist["quality_score"] == assessed[1].payload["rolling_score"] and hist["assessment_count"] == 2
    sug = (await harness.client.get(f"{PREFIX}/{template}/suggestions", headers=h)).json()
    assert sug["analysis_count"] == 2
    # Asking again returns the stored assessment; nothing more is appended.
    again = await harness.client.post(
        f"{PREFIX}/{template}/assess-quality", json={"execution_id": first.execution_id}, headers=h
    )
    assert again.status_code == 200 and again.json()["quality_score"] == first_score
    assert again.json()["rolling_score"] == first_score

    # The read models rebuilt from the event store equal the live ones.
    sessions = harness.app.state.runtime.sessions
    agent_cols = [
        agent_metrics.c.agent_id,
        agent_metrics.c.runs,
        agent_metrics.c.successes,
        agent_metrics.c.total_tokens,
        agent_metrics.c.version,
    ]

    async def snapshot() -> list[Any]:
        # Only this test's rows: the shared broker also carries other tests' runs, some never finished,
        # whose per-agent progress is (by design) only recorded in the store when a run finishes.
        queries = (
            select(recipe_quality).where(recipe_quality.c.workspace_id == ws),
            select(assessments).where(assessments.c.workspace_id == ws),
            select(analyses).where(analyses.c.workspace_id == ws),
            select(*agent_cols).where(agent_metrics.c.workspace_id == ws),
        )
        async with sessions() as session:
            out = []
            for query in queries:
                out.append(sorted((await session.execute(query)).all(), key=lambda row: str(row[0])))
            return out

    # The shared broker also carries earlier tests' executions; wait until this consumer has applied them all.
    live = await snapshot()
    while True:
        await asyncio.sleep(1.0)
        latest = await snapshot()
        if latest == live:
            break
        live = latest
    assert len([row for row in live[1] if row[1] == ws]) == 2 and {a1, a2} <= {row[0] for row in live[3]}
    # every stored event is re-applied (the broker may also carry other tests' executions, hence >= 6:
    # 2 runs x (QualityAssessed + LearningRecorded), and at least one AgentMetricsUpdated for each of 2 agents)
    async with sessions() as session:
        stored = (await session.execute(select(func.count()).select_from(event_store))).scalar_one()
    assert stored >= 6
    assert await SERVICE.rebuild_from_store(harness.settings) == stored
    assert await snapshot() == live


async def test_auto_learning_reads_neither_the_run_back_nor_the_learning_data(harness: Harness) -> None:
    """A finished run is assessed and learned from in one pass: the run's copy is not read back, and the recipe's
    learning_data (the last 50 analyses, the largest document here) is never read: one statement folds the
    run's analysis into it. Counting steps' attempts reads nothing: they are staged for their agent's next
    AgentMetricsUpdated (one row per agent per consumer batch), which the publisher appends once per window."""
    ws, template = unique("ws"), unique("recipe")
    created, recipe = recipe_event(ws, template, auto_learning=True)
    run, a1, a2 = Run(ws, template), new_id(), new_id()
    engine = harness.app.state.runtime.engine
    async with statements_sent(engine) as statements:
        await harness.publish(created, *scenario(run, recipe, a1, a2))
        stream = await quality_events(harness.bootstrap, f"{ws}:{template}", want=2)
    assert [e.event_type for e in stream] == ["QualityAssessed", "LearningRecorded"]
    about_run = [s for s, params in statements if ws in params or run.execution_id in params]
    reads = [s.lower() for s in about_run if s.lstrip().upper().startswith("SELECT")]
    learning_reads = [s for s in reads if "from recipe_quality" in s and ("select *" in s or "learning_data" in s)]
    learning_writes = [s for s in about_run if "learning_data = jsonb_build_object" in " ".join(s.split())]
    run_reads = [s for s in reads if "select * from execution_copies" in s or "execution_copies.recipe," in s]
    assert learning_reads == []
    assert len(learning_writes) == 1  # the LearningRecorded's projection
    # None: the copy scored is the one keeping ExecutionFinished wrote and returned (its totals are given).
    assert run_reads == []
    about_agents = [" ".join(s.split()) for s, params in statements if a1 in params or a2 in params]
    staged = [s for s in about_agents if s.startswith("INSERT INTO agent_attempts")]
    # 4 counted attempts of 2 agents: at most one staging row per agent per consumer batch holding some, and no
    # read of the agents' metrics but the publisher's (under the agent's lock, once per window).
    assert 2 <= len(staged) <= 4
    assert all("FOR UPDATE" in s for s in about_agents if s.startswith("SELECT") and "agent_metrics" in s)

    second = Run(ws, template)
    async with statements_sent(engine) as statements:
        await harness.publish(*scenario(second, recipe, a1, a2))
        stream = await quality_events(harness.bootstrap, f"{ws}:{template}", want=4)
    about_second = [s.lower() for s, params in statements if ws in params or second.execution_id in params]
    assert not [s for s in about_second if s.lstrip().startswith("select") and "learning_data" in s]
    learned = (await learning_data_of(harness, ws, template))["analyses"]
    assert [a["execution_id"] for a in learned] == [run.execution_id, second.execution_id]
    assert [a["analyzed_at"] for a in learned] == [e.payload["analyzed_at"] for e in stream[1::2]]

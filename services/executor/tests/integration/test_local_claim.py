"""The instance that accepts an execute claims the run in the request's transaction and starts it at once.

The runner consumer passes over that request; one delivered to it anyway (after a restart, or read by another
instance) finds the lease taken and skips, holding no slot.
"""

from __future__ import annotations

import pytest
from executor_harness import (
    ModelServer,
    Running,
    agent_snapshot,
    context_header,
    events_of,
    executor_settings,
    recipe_snapshot,
    running_executor,
    seed,
    seeded_recipe,
    start,
    step,
    wait_finished,
    wait_for,
)
from sqlalchemy import select, text

from sous_events.envelope import Envelope, EventPayload
from sous_events.registry import payload_of
from sous_executor.adapters.leases import Leases
from sous_executor.adapters.tables import leases
from sous_executor.domain import execution as execution_module
from sous_executor.entrypoints.consumers import RUNNERS_GROUP, runner_consumer
from sous_local.testing import Infrastructure, statements_sent, unique

pytestmark = pytest.mark.integration


async def test_the_accepting_instance_claims_the_run_with_its_request_and_the_consumer_then_skips_it(
    executor: Running,
) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(ws, [step("slow", 1, agent["id"], f"wait {unique('claim')} [[latency:60000]]")])
    await seed(executor, ws, recipe, [agent])
    service = executor.executor.service
    engine = executor.executor.engine

    # With the runners' consumer stopped, only the request's own transaction can have claimed the run.
    for runner in executor.executor.runtime.consumers:
        if runner.name == RUNNERS_GROUP:
            await runner.stop()

    eid = await start(executor, ws, recipe["template_id"])

    async with service.sessions() as session:
        lease = (
            await session.execute(select(leases.c.owner, leases.c.claims).where(leases.c.execution_id == eid))
        ).one()
    assert lease.owner == executor.settings.runner_id
    assert engine.capacity.holds(eid) and engine.capacity.used == 1
    requested, started = (await events_of(executor, eid))[:2]
    assert started.event_type == "ExecutionStarted" and started.aggregate_version == 2
    assert started.payload["runner_id"] == executor.settings.runner_id

    # The consumer path finds it claimed: nobody else can take it, and this instance does not hold it twice.
    async with service.sessions() as session, session.begin():
        assert not await Leases(service.sessions, unique("other-runner"), 30.0).claim_new(session, eid, ws)
    consumer = runner_consumer(service, engine)
    assert consumer.after_commit is not None
    async with service.sessions() as session, session.begin():
        await consumer.dispatch()(session, requested)
    await consumer.after_commit(requested)
    assert engine.capacity.used == 1 and engine.active == 1

    response = await executor.client.post(
        f"/api/workflow-recipes/{recipe['template_id']}/executions/{eid}/cancel",
        headers=context_header(executor.settings, ws),
    )
    assert response.status_code == 202, response.text
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "cancelled"

    async def released() -> bool:
        return engine.capacity.used == 0

    await wait_for(released)
    # A late delivery of the request, once the run is over, reserves nothing and leaks nothing.
    async with service.sessions() as session, session.begin():
        await consumer.dispatch()(session, requested)
    await consumer.after_commit(requested)
    assert engine.capacity.used == 0 and engine.active == 0
    async with service.sessions() as session:
        owner, claims = (
            await session.execute(select(leases.c.owner, leases.c.claims).where(leases.c.execution_id == eid))
        ).one()
    assert owner == executor.settings.runner_id and claims == lease.claims


async def test_a_run_claimed_on_accept_completes_from_the_request_it_was_handed(executor: Running) -> None:
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(
        ws,
        [step("one", 1, agent["id"], "first {input.topic}"), step("two", 2, agent["id"], "then {steps.one.output}")],
        inputs={"topic": {"type": "string", "required": True}},
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"], {"topic": "claims"})
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "completed", body
    assert [r["status"] for r in body["step_results"]] == ["completed", "completed"]
    kinds = [e.event_type for e in await events_of(executor, eid)]
    assert kinds[:3] == ["ExecutionRequested", "ExecutionStarted", "StepStarted"]
    assert kinds.count("ExecutionStarted") == 1


async def test_a_run_claimed_on_accept_never_decodes_its_request_again(
    executor: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request folds its typed payloads and hands the run that Execution: the recipe and agents the
    ExecutionRequested carries are not read back from its envelope, neither by the request nor by the run."""
    decoded: list[str] = []

    def counting_payload_of(envelope: Envelope) -> EventPayload:
        decoded.append(envelope.event_type)
        return payload_of(envelope)

    monkeypatch.setattr(execution_module, "payload_of", counting_payload_of)
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(ws, [step("one", 1, agent["id"], "first"), step("two", 2, agent["id"], "second")])
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "completed", body
    assert [r["output"] for r in body["step_results"]] != ["", ""]
    assert "ExecutionRequested" not in decoded and "ExecutionStarted" not in decoded


async def test_a_run_claimed_on_accept_opens_its_first_steps_in_the_request_s_transaction(executor: Running) -> None:
    """The ready steps' StepStarted are written with ExecutionRequested, in one transaction; the run then calls
    the model for those attempts without recording them again."""
    ws = unique("ws")
    agent = agent_snapshot(ws)
    marker = unique("open")
    recipe = recipe_snapshot(
        ws,
        [step("a", 1, agent["id"], f"a {marker}"), step("b", 2, agent["id"], "b"), step("c", 3, agent["id"], "c")],
        execution_config={"mode": "parallel", "parallel_limit": 2},
    )
    await seed(executor, ws, recipe, [agent])
    eid = await start(executor, ws, recipe["template_id"])
    body = await wait_finished(executor, ws, recipe["template_id"], eid)
    assert body["status"] == "completed", body
    async with executor.executor.service.sessions() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT aggregate_version, event_type, envelope -> 'payload' ->> 'step_id', "
                    "(envelope -> 'payload' ->> 'attempt')::int, xmin::text FROM event_store "
                    "WHERE aggregate_type = 'Execution' AND aggregate_id = :eid ORDER BY aggregate_version"
                ),
                {"eid": eid},
            )
        ).all()
    request_transaction = rows[0][4]
    opened = [(r[1], r[2], r[3]) for r in rows if r[4] == request_transaction]
    assert opened == [
        ("ExecutionRequested", None, None),
        ("ExecutionStarted", None, None),
        ("StepStarted", "a", 1),
        ("StepStarted", "b", 1),
    ]
    starts = [(r[2], r[3]) for r in rows if r[1] == "StepStarted"]
    assert sorted(starts) == [("a", 1), ("b", 1), ("c", 1)]
    assert [r["attempt"] for r in body["step_results"]] == [1, 1, 1]
    assert f"a {marker}" in body["step_results"][0]["output"]


async def test_an_opened_attempt_is_not_counted_among_the_starts_before_it(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    """With a crash-loop limit of one start, a fresh run's opened first attempt still runs: the limit counts
    the starts before an attempt, and this one has none."""
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server, crash_loop_claims=1)
    async with running_executor(settings) as running:
        ws, tid = await seeded_recipe(running, {"one": f"one {unique('m')}"})
        eid = await start(running, ws, tid)
        body = await wait_finished(running, ws, tid, eid)
    assert body["status"] == "completed", body
    assert [(r["status"], r["attempt"]) for r in body["step_results"]] == [("completed", 1)]


async def test_a_start_without_an_idempotency_key_is_one_statement_and_no_transaction_around_it(
    executor: Running,
) -> None:
    """Its writes are the request's only ones: sent on the statement pool to commit on their own, no BEGIN and
    COMMIT round trips through the engine. A start under an Idempotency-Key reads and writes its key in the
    same transaction, so it keeps one."""
    ws = unique("ws")
    agent = agent_snapshot(ws)
    recipe = recipe_snapshot(ws, [step("a", 1, agent["id"], "a")])
    await seed(executor, ws, recipe, [agent])
    pool = executor.executor.engine.stream.statements
    runtime = executor.executor.runtime

    sent_before = pool.statements_sent
    async with statements_sent(runtime.engine) as through_engine:
        eid = await start(executor, ws, recipe["template_id"])
    # Through the engine nothing of this start's (the consumers' own batches may run meanwhile).
    assert [sql for sql, params in through_engine if eid in params] == []
    assert pool.statements_sent - sent_before >= 2  # the start's statement and the recipe's read
    assert (await wait_finished(executor, ws, recipe["template_id"], eid))["status"] == "completed"

    async with statements_sent(runtime.engine) as through_engine:
        response = await executor.client.post(
            f"/api/workflow-recipes/{recipe['template_id']}/execute",
            json={"input_data": {}},
            headers={**context_header(executor.settings, ws), "Idempotency-Key": unique("key")},
        )
    assert response.status_code == 202, response.text
    keyed = str(response.json()["recipe_execution_id"])
    # The key's row, then the start's statement, in the transaction on the engine's connection.
    assert [sql.split(" ")[0] for sql, params in through_engine if keyed in params] == ["INSERT", "WITH"]


async def test_a_start_refused_at_its_own_commit_is_a_429_and_writes_nothing(
    infra: Infrastructure, fresh_database: str, model_server: ModelServer
) -> None:
    """The admission is decided when the start's statement commits on its own: past the workspace's limit of
    running executions, the 429 of a refused transaction, and no row of it."""
    settings = executor_settings(fresh_database, infra.kafka_bootstrap, model_server).model_copy(
        update={"max_concurrent_executions_per_workspace": 1}
    )
    async with running_executor(settings) as running:
        ws, tid = await seeded_recipe(running, {"slow": f"wait {unique('hold')} [[latency:60000]]"})
        held = await start(running, ws, tid)
        refused = await running.client.post(
            f"/api/workflow-recipes/{tid}/execute",
            json={"input_data": {}},
            headers=context_header(running.settings, ws),
        )
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "concurrency_limit"
        async with running.executor.service.sessions() as session:
            rows = (
                await session.execute(text("SELECT count(*) FROM executions WHERE workspace_id = :ws"), {"ws": ws})
            ).scalar_one()
        assert rows == 1
        response = await running.client.post(
            f"/api/workflow-recipes/{tid}/executions/{held}/cancel",
            headers=context_header(running.settings, ws),
        )
        assert response.status_code == 202, response.text

"""Events on the real broker: what the catalog publishes, what it consumes (idempotently), and rebuild."""

import pytest
from sqlalchemy import select, text

from sous_catalog.adapters.tables import agents, recipes
from sous_catalog.domain.recipe import popularity
from sous_catalog.projections import rebuild_read_models
from sous_events import events as ev
from sous_events.envelope import Actor
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_local.testing import statements_sent, unique

pytestmark = pytest.mark.integration

BASE = "/api/workflow-recipes"


def event(payload, workspace_id, aggregate_id=None, version=1, actor=None):
    return make_event(
        payload,
        producer="test",
        workspace_id=workspace_id,
        aggregate_id=aggregate_id or new_id(),
        aggregate_version=version,
        actor=actor,
    )


async def recipe_of(catalog, template_id, workspace=None):
    response = await catalog.request("GET", f"{BASE}/{template_id}", workspace=workspace)
    return response.json() if response.status_code == 200 else None


async def test_each_state_change_is_published_with_its_snapshot(catalog, tap):
    agent = await catalog.agent(name="Publisher")
    recipe = await catalog.recipe(agent_id=agent["id"])
    path = f"{BASE}/{recipe['template_id']}"
    await catalog.request("PUT", path, json={"name": "Renamed", "tags": ["ops"]})
    await catalog.request("PUT", f"/api/agents/{agent['id']}", json={"description": "changed"})
    await catalog.request("DELETE", path)
    await catalog.request("DELETE", f"/api/agents/{agent['id']}")

    seen = await tap.wait_for(catalog.workspace, 6)
    assert [e.event_type for e in seen if e.aggregate_type == "Recipe"] == [
        "RecipeCreated",
        "RecipeUpdated",
        "RecipeDeleted",
    ]
    assert [e.event_type for e in seen if e.aggregate_type == "Agent"] == [
        "AgentRegistered",
        "AgentUpdated",
        "AgentRemoved",
    ]
    created, updated, deleted = (e for e in seen if e.aggregate_type == "Recipe")
    snapshot = created.payload["recipe"]
    assert snapshot == recipe  # the full public object, as the API returned it
    for key in (
        "id",
        "workspace_id",
        "template_id",
        "revision",
        "steps",
        "schedule_config",
        "quality_score",
        "use_count",
    ):
        assert key in snapshot
    assert created.aggregate_id == recipe["id"] and created.aggregate_version == 1
    assert created.actor.user_id == "user-1" and created.producer == "catalog"
    assert updated.payload["recipe"]["name"] == "Renamed" and updated.payload["recipe"]["revision"] == 2
    assert sorted(updated.payload["changed_fields"]) == ["name", "tags"]
    assert deleted.payload == {"recipe_id": recipe["id"], "template_id": recipe["template_id"]}
    registered = next(e for e in seen if e.event_type == "AgentRegistered")
    assert registered.payload["agent"]["model_config"] == agent["model_config"]
    assert "api_key" not in registered.payload["agent"]["model_config"]
    agent_updated = next(e for e in seen if e.event_type == "AgentUpdated")
    assert agent_updated.payload["changed_fields"] == ["description"]


async def test_execution_events_update_statistics_once(catalog):
    runner = catalog.app.state.runtime.consumers[0]
    ws = catalog.workspace
    recipe = await catalog.recipe()
    tid = recipe["template_id"]
    first, second = new_id(), new_id()
    await catalog.publish(event(ev.ExecutionRequested(execution_id=first, template_id=tid, recipe=recipe), ws, first))
    await catalog.publish(event(ev.ExecutionStarted(execution_id=first, template_id=tid), ws, first, 2))
    await catalog.publish(
        event(ev.ExecutionFinished(execution_id=first, template_id=tid, status="completed"), ws, first, 3)
    )

    async def finished_once():
        found = await recipe_of(catalog, tid)
        return found if found["success_rate"] == 1.0 else None

    after_first = await catalog.wait_for(finished_once)
    assert after_first["use_count"] == 1 and after_first["last_used_at"]
    assert after_first["popularity"] > 0

    await catalog.publish(event(ev.ExecutionRequested(execution_id=second, template_id=tid, recipe=recipe), ws, second))
    failed = event(ev.ExecutionFinished(execution_id=second, template_id=tid, status="failed"), ws, second, 2)
    await catalog.publish(failed)

    async def finished_twice():
        found = await recipe_of(catalog, tid)
        return found if found["success_rate"] == 0.5 else None

    after_second = await catalog.wait_for(finished_twice)
    assert after_second["use_count"] == 2
    assert after_second["popularity"] < after_first["popularity"] * 2

    duplicates = runner.duplicates
    await catalog.publish(failed)  # the same envelope again
    await catalog.wait_for(lambda: _true_when(runner.duplicates > duplicates))
    again = await recipe_of(catalog, tid)
    assert (again["use_count"], again["success_rate"], again["popularity"]) == (
        2,
        0.5,
        after_second["popularity"],
    )
    dashboard = (await catalog.request("GET", f"{BASE}/stats/dashboard")).json()
    assert dashboard["overview"]["total_executions"] == 2
    assert dashboard["status_breakdown"]["completed"] == 1 and dashboard["status_breakdown"]["failed"] == 1
    assert dashboard["overview"]["avg_success_rate"] == 0.5
    # no revision was added by statistics
    assert again["revision"] == 1


async def batch_statements(catalog, envelopes) -> list[str]:
    """Apply `envelopes` as one consumer batch; the statements it sent, whitespace folded."""
    runtime = catalog.app.state.runtime
    async with statements_sent(runtime.engine) as sent, runtime.sessions() as session, session.begin():
        await runtime.consumers[0].batch_handler(session, envelopes)
    return [sql for sql, _ in sent]


async def test_a_batch_writes_each_recipe_it_counts_once_without_reading_the_recipe_documents(catalog):
    """Counting a use, a finish or a score is arithmetic in SQL on the statistics columns, then the popularity
    it leads to: no row is locked and read first, and the recipe's documents (the snapshot, learning_data,
    large) are neither read nor returned. A batch of three runs of one recipe (their requests, starts, finishes
    and scores) writes each execution row once per event and the recipe twice: its counters, then its
    popularity and success rate."""
    ws = catalog.workspace
    recipe = await catalog.recipe()
    tid = recipe["template_id"]
    envelopes = []
    for index, status in enumerate(("completed", "completed", "failed")):
        execution_id = new_id()
        envelopes += [
            event(ev.ExecutionRequested(execution_id=execution_id, template_id=tid, recipe=recipe), ws, execution_id),
            event(ev.ExecutionStarted(execution_id=execution_id, template_id=tid), ws, execution_id, 2),
            event(ev.ExecutionFinished(execution_id=execution_id, template_id=tid, status=status), ws, execution_id, 3),
        ]
        assessed = ev.QualityAssessed(
            template_id=tid,
            execution_id=execution_id,
            quality_score=0.9,
            rolling_score=0.5 + index / 10,
            breakdown={},
            grade="B",
        )
        envelopes.append(event(assessed, ws, f"{ws}:{tid}", index + 1))
    statements = await batch_statements(catalog, envelopes)
    assert len([s for s in statements if "INTO executions" in s]) == 9
    assert len([s for s in statements if "UPDATE recipes" in s]) == 2
    assert not [s for s in statements if "FOR UPDATE" in s and ("recipes" in s or "executions" in s)]
    assert not [s for s in statements if "learning_data" in s or "doc" in s.split()]
    found = await recipe_of(catalog, tid)
    rate = round(2 / 3, 6)
    assert (found["use_count"], found["success_rate"], found["quality_score"]) == (3, rate, 0.7)
    assert found["popularity"] == popularity(3, rate, 0.7)


async def test_a_batch_folds_its_analyses_of_a_recipe_into_its_learning_data_in_order_in_one_statement(catalog):
    """A batch's LearningRecorded of one recipe are folded into its learning_data by one statement (eight at
    most each), in the order they came: the latest fields are the last one's, every one is summarised."""
    from sous_catalog.adapters.statistics import MAX_FOLDED
    from sous_events.learning_fold import fold_in_memory

    ws = catalog.workspace
    tid = (await catalog.recipe())["template_id"]
    stream = f"{ws}:{tid}"
    analyses = [
        {
            "template_id": tid,
            "execution_id": new_id(),
            "analyzed_at": f"t{index:02d}",
            "patterns": [{"type": "slow_step", "step_id": f"s{index}"}] * (index % 3),
            "suggestions": [{"type": "prompt_rewrite", "priority": "low", "message": f"m{index}"}],
            "performance_metrics": {"duration_ms": index},
        }
        for index in range(MAX_FOLDED + 2)
    ]
    envelopes = [
        event(ev.LearningRecorded.model_validate(analysis), ws, stream, index + 1)
        for index, analysis in enumerate(analyses)
    ]
    statements = await batch_statements(catalog, envelopes)
    # Ten analyses: a statement of eight, then one of two.
    assert len([s for s in statements if s.startswith("UPDATE recipes SET learning_data")]) == 2
    expected = None
    for envelope in envelopes:
        expected = fold_in_memory(expected, envelope.payload)
    assert (await recipe_of(catalog, tid))["learning_data"] == expected


async def test_an_execution_moves_forward_only_and_a_cancellation_is_no_finish(catalog):
    ws = catalog.workspace
    recipe = await catalog.recipe()
    tid = recipe["template_id"]
    done, cancelled = new_id(), new_id()
    runner = catalog.app.state.runtime.consumers[0]
    applied = runner.applied
    for payload, stream, version in (
        (ev.ExecutionRequested(execution_id=done, template_id=tid, recipe=recipe), done, 1),
        (ev.ExecutionFinished(execution_id=done, template_id=tid, status="completed"), done, 3),
        (ev.ExecutionStarted(execution_id=done, template_id=tid), done, 2),  # late: must not reopen it
        (ev.ExecutionFinished(execution_id=done, template_id=tid, status="failed"), done, 4),  # final already
        (ev.ExecutionStarted(execution_id=cancelled, template_id=tid), cancelled, 2),  # before its request
        (ev.ExecutionRequested(execution_id=cancelled, template_id=tid, recipe=recipe), cancelled, 1),
        (ev.ExecutionFinished(execution_id=cancelled, template_id=tid, status="cancelled"), cancelled, 3),
    ):
        await catalog.publish(event(payload, ws, stream, version))

    async def settled():
        # The two runs' events are on two partitions: every one of the seven applied, not just the last.
        if runner.applied < applied + 7:
            return None
        dashboard = (await catalog.request("GET", f"{BASE}/stats/dashboard")).json()
        return dashboard if dashboard["status_breakdown"]["cancelled"] == 1 else None

    dashboard = await catalog.wait_for(settled)
    assert dashboard["status_breakdown"] == {"completed": 1, "failed": 0, "running": 0, "pending": 0, "cancelled": 1}
    found = await recipe_of(catalog, tid)
    # a request that came after its execution started is no new use; the cancellation is no finish
    assert (found["use_count"], found["success_rate"]) == (1, 1.0)
    assert found["popularity"] == popularity(1, 1.0, None)


async def _true_when(value):
    return value


async def test_quality_learning_and_agent_metrics(catalog):
    runner = catalog.app.state.runtime.consumers[0]
    ws = catalog.workspace
    recipe = await catalog.recipe()
    tid = recipe["template_id"]
    agent_id = recipe["steps"][0]["agent_id"]
    stream = f"{ws}:{tid}"
    high = event(
        ev.QualityAssessed(
            template_id=tid, execution_id=new_id(), quality_score=0.9, rolling_score=0.8, breakdown={}, grade="B"
        ),
        ws,
        stream,
    )
    await catalog.publish(high)
    await catalog.wait_for(lambda: _quality_is(catalog, tid, 0.8))
    low = event(
        ev.QualityAssessed(
            template_id=tid, execution_id=new_id(), quality_score=0.2, rolling_score=0.6, breakdown={}, grade="D"
        ),
        ws,
        stream,
        2,
    )
    await catalog.publish(low)
    await catalog.wait_for(lambda: _quality_is(catalog, tid, 0.6))
    duplicates = runner.duplicates
    await catalog.publish(high)  # redelivered: must not bring 0.8 back
    await catalog.wait_for(lambda: _true_when(runner.duplicates > duplicates))
    assert (await recipe_of(catalog, tid))["quality_score"] == 0.6

    # A stored v2 LearningRecorded carried the recipe's whole learning_data (here, its first analysis); from v3
    # on each carries its run's analysis, which the catalog folds into the recipe's learning_data.
    patterns = [{"type": "slow_step", "severity": "medium", "description": "slow", "step_id": "fetch"}]
    performance = {"total_steps": 1, "success_rate": 1.0, "step_durations": [{"step_id": "fetch", "duration_ms": 9.5}]}
    first, second = new_id(), new_id()
    first_analysis = {
        "execution_id": first,
        "analyzed_at": "t1",
        "pattern_count": 1,
        "suggestion_count": 0,
        "performance_metrics": performance,
    }
    stored_v2 = {
        "template_id": tid,
        "execution_id": first,
        "patterns": patterns,
        "suggestions": [],
        "performance_metrics": performance,
        "learning_data": {
            "analyses": [first_analysis],
            "latest_patterns": patterns,
            "latest_suggestions": [],
            "latest_performance": performance,
            "last_analyzed_at": "t1",
        },
    }
    v2_event = event(ev.LearningRecorded(template_id=tid, execution_id=first, analyzed_at="t1"), ws, stream, 3)
    await catalog.publish(v2_event.model_copy(update={"schema_version": 2, "payload": stored_v2}))
    suggestions = [{"type": "prompt_rewrite", "priority": "low", "message": "m", "step_id": "fetch"}]
    learned_v3 = ev.LearningRecorded.model_validate(
        {
            "template_id": tid,
            "execution_id": second,
            "analyzed_at": "t2",
            "suggestions": suggestions,
            "performance_metrics": performance,
        }
    )
    await catalog.publish(event(learned_v3, ws, stream, 4))
    learning = {
        "analyses": [
            first_analysis,
            first_analysis | {"execution_id": second, "analyzed_at": "t2", "pattern_count": 0, "suggestion_count": 1},
        ],
        "latest_patterns": [],
        "latest_suggestions": suggestions,
        "latest_performance": performance,
        "last_analyzed_at": "t2",
    }
    metrics = {
        "runs": 3,
        "successes": 2,
        "success_rate": 0.6667,
        "mean_duration_ms": 12.5,
        "total_tokens": 99,
        "total_cost_usd": 0.01,
    }
    await catalog.publish(event(ev.AgentMetricsUpdated(agent_id=agent_id, metrics=metrics), ws, agent_id))

    async def learned():
        return (await recipe_of(catalog, tid))["learning_data"] == learning

    async def measured():
        return (await catalog.request("GET", f"/api/agents/{agent_id}")).json()["metrics"] == metrics

    await catalog.wait_for(learned)
    await catalog.wait_for(measured)
    # another workspace's event for the same ids changes nothing here
    await catalog.publish(event(ev.AgentMetricsUpdated(agent_id=agent_id, metrics={"runs": 1}), unique("ws"), agent_id))
    dashboard = (await catalog.request("GET", f"{BASE}/stats/dashboard")).json()
    assert dashboard["overview"]["avg_quality_score"] == 0.6


async def _quality_is(catalog, tid, value):
    found = await recipe_of(catalog, tid)
    return found is not None and found["quality_score"] == value


async def test_recipe_installed_creates_the_clone_once(catalog, tap):
    runner = catalog.app.state.runtime.consumers[0]
    source_ws = unique("ws")
    writer = await catalog.agent(workspace=source_ws, name="Writer")
    checker = await catalog.agent(workspace=source_ws, name="Checker", skills=["time"])
    source = await catalog.recipe(
        workspace=source_ws,
        agent_id=writer["id"],
        name="Blog post",
        steps=[
            {"step_id": "write", "order": 1, "agent_id": writer["id"]},
            {"step_id": "check", "order": 2, "agent_id": checker["id"], "depends_on": ["write"]},
        ],
    )
    target = catalog.workspace
    local_writer = await catalog.agent(name="Writer")
    await catalog.recipe(agent_id=local_writer["id"], name="Blog post")  # the name is taken in the target
    install_id = new_id()
    listing_id = new_id()
    snapshot = {**source, "template_id": f"{source['template_id']}-{install_id.replace('-', '')[:6]}"}
    installed = event(
        ev.RecipeInstalled(
            install_id=install_id,
            listing_id=listing_id,
            target_workspace_id=target,
            recipe=snapshot,
            agents=[writer, checker],
            installed_by="installer",
        ),
        target,
        install_id,
        actor=Actor(user_id="installer", auth_type="jwt"),
    )
    await catalog.publish(installed)

    async def cloned():
        return await recipe_of(catalog, snapshot["template_id"])

    clone = await catalog.wait_for(cloned)
    assert clone["name"] == "Blog post (Copy)" and clone["workspace_id"] == target
    assert clone["cloned_from"] == {"listing_id": listing_id, "template_id": source["template_id"]}
    assert clone["created_by"] == "installer" and clone["id"] != source["id"]
    write, check = clone["steps"]
    assert write["agent_id"] == local_writer["id"]  # mapped by name
    assert check["agent_id"] not in (checker["id"], local_writer["id"])  # created in the target
    assert check["agent"]["name"] == "Checker" and check["agent"]["tool_count"] == 1

    duplicates = runner.duplicates
    await catalog.publish(installed)
    await catalog.wait_for(lambda: _true_when(runner.duplicates > duplicates))
    listed = (await catalog.request("GET", BASE, params={"search": "blog post"})).json()
    assert listed["total"] == 2
    agents_listed = (await catalog.request("GET", "/api/agents")).json()
    assert sorted(a["name"] for a in agents_listed["items"]) == ["Checker", "Writer"]

    seen = await tap.wait_for(target, 4)
    clone_created = [e for e in seen if e.event_type == "RecipeCreated" and e.aggregate_id == clone["id"]]
    assert len(clone_created) == 1 and clone_created[0].actor.user_id == "installer"
    assert clone_created[0].causation_id == installed.event_id


async def test_rebuild_from_the_event_store_equals_the_live_read_models(catalog):
    agent = await catalog.agent()
    kept = await catalog.recipe(agent_id=agent["id"], tags=["a"])
    gone = await catalog.recipe(agent_id=agent["id"])
    spare = await catalog.agent()
    await catalog.request("PUT", f"{BASE}/{kept['template_id']}", json={"name": "kept v2", "is_featured": True})
    await catalog.request("PUT", f"/api/agents/{agent['id']}", json={"skills": ["time"]})
    await catalog.request("DELETE", f"{BASE}/{gone['template_id']}")
    await catalog.request("DELETE", f"/api/agents/{spare['id']}")
    await catalog.request("POST", f"{BASE}/{kept['template_id']}/use")

    sessions = catalog.app.state.runtime.sessions

    async def snapshot():
        async with sessions() as session:
            recipe_rows = (await session.execute(select(recipes).order_by(recipes.c.id))).all()
            agent_rows = (await session.execute(select(agents).order_by(agents.c.id))).all()
        return [tuple(r) for r in recipe_rows], [tuple(r) for r in agent_rows]

    live = await snapshot()
    assert any(row[0] == kept["id"] for row in live[0]) and not any(row[0] == gone["id"] for row in live[0])
    async with sessions.begin() as session:  # damage the read model
        await session.execute(recipes.update().values(name="corrupted", revision=99))
    replayed = await rebuild_read_models(sessions)
    assert replayed >= 9
    assert await snapshot() == live


async def test_the_learning_document_is_stored_uncompressed(catalog):
    """Each batch's analyses rewrite the whole document: it is kept out of line without compression (0004)."""
    async with catalog.app.state.runtime.sessions() as session:
        storage = await session.scalar(
            text("SELECT attstorage::text FROM pg_attribute WHERE attrelid = 'recipes'::regclass AND attname = :c"),
            {"c": "learning_data"},
        )
    assert storage == "e"

"""The copy of a requested run reads the recipe and agents through a view: what it keeps is what the model
would have written out again, fields the model does not know included."""

from __future__ import annotations

from sous_events import events as ev
from sous_events.registry import make_event, payload_as, payload_of
from sous_quality.entrypoints.consumers import VIEWS
from sous_quality.replicas import RequestedRun


def test_the_view_keeps_the_recipe_and_agents_as_the_model_writes_them() -> None:
    recipe = {
        "template_id": "t",
        "revision": 3,
        "steps": [{"step_id": "s1", "agent_id": "a1", "timeout": 5, "a_newer_field": {"x": 1}}],
        "inputs": {"topic": {"required": True}},
        "execution_config": {"auto_learning": True},
    }
    agents = {"a1": {"id": "a1", "name": "Researcher", "model_config": {"model_id": "small-1"}}}
    payload = ev.ExecutionRequested(
        execution_id="e1", template_id="t", recipe=recipe, agents=agents, input_data={"topic": "tides"}
    )
    envelope = make_event(payload, producer="executor", workspace_id="ws", aggregate_id="e1", aggregate_version=1)
    model = payload_of(envelope)
    assert isinstance(model, ev.ExecutionRequested)
    view = payload_as(envelope, VIEWS[ev.ExecutionRequested])
    assert isinstance(view, RequestedRun)
    assert view.recipe == model.recipe.as_dict()
    assert view.agents == {agent_id: agent.as_dict() for agent_id, agent in model.agents.items()}
    assert view.input_data == model.input_data

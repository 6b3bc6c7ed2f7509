"""Typed dispatch: topics from the registry, every payload decoded (and upcast) through it."""

from typing import Any

import pytest
from pydantic import ValidationError

from sous_events import events as ev
from sous_events import topics
from sous_events.dispatch import Dispatch
from sous_events.envelope import Envelope, EventPayload
from sous_events.registry import UnknownEventType, make_event

pytestmark = pytest.mark.unit

RECIPE = {"template_id": "menu", "steps": [{"step_id": "a", "agent_id": "ag"}]}


class Seen:
    def __init__(self) -> None:
        self.calls: list[tuple[str, EventPayload]] = []

    async def __call__(self, session: Any, envelope: Envelope, payload: Any) -> None:
        self.calls.append((envelope.event_type, payload))


def test_topics_and_event_types_come_from_the_registry():
    seen = Seen()
    dispatch = Dispatch({ev.ExecutionRequested: seen, ev.QualityAssessed: seen, ev.RecipeDeleted: seen})
    assert dispatch.topics == sorted([topics.EXECUTOR_EXECUTIONS, topics.QUALITY, topics.CATALOG_RECIPES])
    assert dispatch.event_types == {"ExecutionRequested", "QualityAssessed", "RecipeDeleted"}


def test_an_unregistered_payload_class_cannot_be_declared():
    class NotAnEvent(EventPayload):
        x: int = 0

    with pytest.raises(UnknownEventType):
        Dispatch({NotAnEvent: Seen()})


async def test_each_handler_gets_its_payload_as_its_model():
    seen = Seen()
    dispatch = Dispatch({ev.ExecutionRequested: seen})
    event = make_event(
        ev.ExecutionRequested(execution_id="e", template_id="menu", recipe=RECIPE),
        producer="executor",
        workspace_id="w",
        aggregate_id="e",
        aggregate_version=1,
    )
    await dispatch(None, event)  # type: ignore[arg-type]
    [(kind, payload)] = seen.calls
    assert kind == "ExecutionRequested"
    assert isinstance(payload, ev.ExecutionRequested)
    assert payload.recipe.steps[0].agent_id == "ag"


async def test_a_stored_v1_event_is_upcast_before_its_handler_sees_it():
    seen = Seen()
    dispatch = Dispatch({ev.ExecutionRequested: seen})
    v1 = Envelope(
        event_type="ExecutionRequested",
        schema_version=1,
        producer="executor",
        workspace_id="w",
        aggregate_type="Execution",
        aggregate_id="e",
        aggregate_version=1,
        payload={"execution_id": "e", "recipe_id": "menu", "recipe": RECIPE},
    )
    await dispatch(None, v1)  # type: ignore[arg-type]
    [(_, payload)] = seen.calls
    assert isinstance(payload, ev.ExecutionRequested)
    assert payload.template_id == "menu"


async def test_an_event_without_a_handler_is_refused_not_guessed():
    dispatch = Dispatch({ev.ExecutionRequested: Seen()})
    other = make_event(
        ev.ExecutionCancelRequested(execution_id="e"),
        producer="executor",
        workspace_id="w",
        aggregate_id="e",
        aggregate_version=2,
    )
    with pytest.raises(UnknownEventType):
        await dispatch(None, other)  # type: ignore[arg-type]
    unknown = other.model_copy(update={"event_type": "SomethingNew"})
    with pytest.raises(UnknownEventType):
        await dispatch(None, unknown)  # type: ignore[arg-type]


async def test_a_payload_its_model_refuses_fails_validation():
    dispatch = Dispatch({ev.ExecutionRequested: Seen()})
    broken = Envelope(
        event_type="ExecutionRequested",
        schema_version=2,
        producer="executor",
        workspace_id="w",
        aggregate_type="Execution",
        aggregate_id="e",
        aggregate_version=1,
        payload={"execution_id": "e", "template_id": "menu", "recipe": {"steps": []}},
    )
    with pytest.raises(ValidationError):
        await dispatch(None, broken)  # type: ignore[arg-type]


class RequestedTemplate(EventPayload):
    """A view of ExecutionRequested: two of its fields."""

    execution_id: str
    template_id: str


async def test_a_declared_view_reads_only_its_fields_and_is_upcast_too():
    seen = Seen()
    dispatch = Dispatch({ev.ExecutionRequested: seen}, {ev.ExecutionRequested: RequestedTemplate})
    v1 = Envelope(
        event_type="ExecutionRequested",
        schema_version=1,
        producer="executor",
        workspace_id="w",
        aggregate_type="Execution",
        aggregate_id="e",
        aggregate_version=1,
        # a recipe its full model would refuse: the view does not read it
        payload={"execution_id": "e", "recipe_id": "menu", "recipe": {"steps": []}},
    )
    await dispatch(None, v1)  # type: ignore[arg-type]
    [(_, payload)] = seen.calls
    assert isinstance(payload, RequestedTemplate)
    assert (payload.execution_id, payload.template_id) == ("e", "menu")
    broken = v1.model_copy(update={"payload": {"recipe_id": "menu"}})
    with pytest.raises(ValidationError):
        await dispatch(None, broken)  # type: ignore[arg-type]


def test_a_view_names_fields_of_a_handled_payload_only():
    class Invented(EventPayload):
        execution_id: str
        invented: str

    with pytest.raises(ValueError, match="invented"):
        Dispatch({ev.ExecutionRequested: Seen()}, {ev.ExecutionRequested: Invented})
    with pytest.raises(ValueError):
        Dispatch({ev.ExecutionRequested: Seen()}, {ev.QualityAssessed: RequestedTemplate})

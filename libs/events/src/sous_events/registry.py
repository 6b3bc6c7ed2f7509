"""Which payload model, topic and aggregate type belong to each event type; upcasters per version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sous_events import events as ev
from sous_events import topics
from sous_events.envelope import Envelope, EventPayload
from sous_events.tracing import current_traceparent

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
PayloadT = TypeVar("PayloadT", bound=EventPayload)


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    payload: type[EventPayload]
    topic: str
    aggregate_type: str
    schema_version: int = 1


class UnknownEventType(KeyError):
    """An event type this registry does not know (a newer producer, or a typo)."""


def _spec(payload: type[EventPayload], topic: str, aggregate_type: str, version: int = 1) -> EventSpec:
    return EventSpec(payload.__name__, payload, topic, aggregate_type, version)


EVENT_SPECS: dict[str, EventSpec] = {
    spec.event_type: spec
    for spec in [
        _spec(ev.RecipeCreated, topics.CATALOG_RECIPES, "Recipe"),
        _spec(ev.RecipeUpdated, topics.CATALOG_RECIPES, "Recipe"),
        _spec(ev.RecipeDeleted, topics.CATALOG_RECIPES, "Recipe"),
        _spec(ev.RecipeVersionProposed, topics.CATALOG_RECIPES, "Recipe"),
        _spec(ev.RecipePromotionStarted, topics.CATALOG_RECIPES, "RecipeVersion"),
        _spec(ev.RecipeVersionPromoted, topics.CATALOG_RECIPES, "RecipeVersion"),
        _spec(ev.RecipePromotionRefused, topics.CATALOG_RECIPES, "RecipeVersion"),
        _spec(ev.AgentRegistered, topics.CATALOG_AGENTS, "Agent"),
        _spec(ev.AgentUpdated, topics.CATALOG_AGENTS, "Agent"),
        _spec(ev.AgentRemoved, topics.CATALOG_AGENTS, "Agent"),
        _spec(ev.ExecutionRequested, topics.EXECUTOR_EXECUTIONS, "Execution", version=2),
        _spec(ev.ExecutionStarted, topics.EXECUTOR_EXECUTIONS, "Execution", version=2),
        _spec(ev.StepStarted, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepCompleted, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepFailed, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepRetryScheduled, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepUsageRecorded, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepSkipped, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.ExecutionCancelRequested, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.ExecutionFinished, topics.EXECUTOR_EXECUTIONS, "Execution", version=2),
        _spec(ev.QualityAssessed, topics.QUALITY, "RecipeQuality", version=2),
        _spec(ev.LearningRecorded, topics.QUALITY, "RecipeQuality", version=3),
        _spec(ev.AgentMetricsUpdated, topics.QUALITY, "AgentMetrics"),
        _spec(ev.ListingSubmitted, topics.MARKETPLACE, "Listing", version=2),
        _spec(ev.ListingApproved, topics.MARKETPLACE, "Listing"),
        _spec(ev.ListingRejected, topics.MARKETPLACE, "Listing"),
        _spec(ev.ListingFlagged, topics.MARKETPLACE, "Listing"),
        _spec(ev.ListingFlagCleared, topics.MARKETPLACE, "Listing"),
        _spec(ev.ListingWithdrawn, topics.MARKETPLACE, "Listing"),
        _spec(ev.RecipeInstalled, topics.MARKETPLACE, "Install"),
        _spec(ev.WorkflowCreated, topics.EXECUTOR_WORKFLOWS, "Workflow"),
        _spec(ev.WorkflowUpdated, topics.EXECUTOR_WORKFLOWS, "Workflow"),
        _spec(ev.WorkflowDeleted, topics.EXECUTOR_WORKFLOWS, "Workflow"),
        _spec(ev.WorkflowRunRequested, topics.EXECUTOR_WORKFLOWS, "WorkflowRun"),
        _spec(ev.WorkflowStageStarted, topics.EXECUTOR_WORKFLOWS, "WorkflowRun"),
        _spec(ev.WorkflowPlanRejected, topics.EXECUTOR_WORKFLOWS, "WorkflowRun"),
        _spec(ev.WorkflowStageCompleted, topics.EXECUTOR_WORKFLOWS, "WorkflowRun"),
        _spec(ev.WorkflowStageFailed, topics.EXECUTOR_WORKFLOWS, "WorkflowRun"),
        _spec(ev.WorkflowRunCancelRequested, topics.EXECUTOR_WORKFLOWS, "WorkflowRun"),
        _spec(ev.WorkflowRunFinished, topics.EXECUTOR_WORKFLOWS, "WorkflowRun"),
    ]
}

# (event_type, from_version) -> function turning a payload of that version into the next one.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def register_upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def decorate(fn: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return decorate


def _renamed(old: str, new: str) -> Upcaster:
    def rename(payload: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in payload.items() if k != old}
        if old in payload:
            out.setdefault(new, payload[old])
        return out

    return rename


# v1 of these events called the recipe's template id `recipe_id`, the name RecipeDeleted uses for the
# catalog's internal id; v2 calls it `template_id` (docs/glossary.md).
for _event_type in (
    "ExecutionRequested",
    "ExecutionStarted",
    "ExecutionFinished",
    "QualityAssessed",
    "LearningRecorded",
    "ListingSubmitted",
):
    register_upcaster(_event_type, 1)(_renamed("recipe_id", "template_id"))


@register_upcaster("LearningRecorded", 2)
def _learning_of_its_run_only(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 carried the recipe's whole new learning_data, the fold of its stream up to the event; v3 carries the
    run's analysis only, and its time is the one that learning_data says the analysis was made at."""
    out = {k: v for k, v in payload.items() if k != "learning_data"}
    learning_data = payload.get("learning_data")
    analyzed_at = learning_data.get("last_analyzed_at") if isinstance(learning_data, dict) else None
    out.setdefault("analyzed_at", analyzed_at if isinstance(analyzed_at, str) else "")
    return out


def spec_for(event_type: str) -> EventSpec | None:
    return EVENT_SPECS.get(event_type)


def spec_of(payload: type[EventPayload]) -> EventSpec:
    """The registered spec of a payload class."""
    spec = EVENT_SPECS.get(payload.__name__)
    if spec is None or spec.payload is not payload:
        raise UnknownEventType(f"{payload.__name__} is not a registered event payload")
    return spec


def topic_for(event_type: str) -> str:
    spec = EVENT_SPECS.get(event_type)
    if spec is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    return spec.topic


def upcast(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """A stored payload of `version` brought to the registered version, one upcaster per step."""
    spec = EVENT_SPECS.get(event_type)
    target = spec.schema_version if spec else version
    while version < target:
        payload = UPCASTERS[(event_type, version)](payload)
        version += 1
    return payload


def payload_of(envelope: Envelope) -> EventPayload:
    """The envelope's payload as its registered model, upcast to the current schema version.

    The one way to read a payload: every consumer, projection and aggregate goes through here, so an
    upcaster applies wherever an old event is read. Raises UnknownEventType, or a pydantic ValidationError
    for a payload its model refuses.
    """
    spec = EVENT_SPECS.get(envelope.event_type)
    if spec is None:
        raise UnknownEventType(f"unknown event type {envelope.event_type!r}")
    return payload_as(envelope, spec.payload)


def payload_as(envelope: Envelope, model: type[PayloadT]) -> PayloadT:
    """The envelope's payload, upcast to the current schema version, read as `model`: its registered model,
    or a view declaring only the fields a reader uses (the others are neither validated nor built)."""
    return model.model_validate(upcast(envelope.event_type, envelope.schema_version, envelope.payload))


def make_event(
    payload: EventPayload,
    *,
    producer: str,
    workspace_id: str,
    aggregate_id: str,
    aggregate_version: int,
    correlation_id: str = "",
    causation_id: str = "",
    actor: Any = None,
    traceparent: str = "",
) -> Envelope:
    """Wrap a typed payload in an envelope, with the aggregate type of its registered spec."""
    spec = EVENT_SPECS[type(payload).__name__]
    fields: dict[str, Any] = {
        "event_type": spec.event_type,
        "schema_version": spec.schema_version,
        "producer": producer,
        "workspace_id": workspace_id,
        "aggregate_type": spec.aggregate_type,
        "aggregate_id": aggregate_id,
        "aggregate_version": aggregate_version,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "payload": payload.model_dump(mode="json"),
        # The span this event is made in (a request, a consumer, an engine step) is its parent downstream.
        "traceparent": traceparent or current_traceparent(),
    }
    if actor is not None:
        fields["actor"] = actor
    return Envelope(**fields)

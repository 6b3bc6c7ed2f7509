"""Which payload model, topic and aggregate type belong to each event type; upcasters per version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sous_events import events as ev
from sous_events import topics
from sous_events.envelope import Envelope, EventPayload
from sous_events.tracing import current_traceparent

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    payload: type[EventPayload]
    topic: str
    aggregate_type: str
    schema_version: int = 1


def _spec(payload: type[EventPayload], topic: str, aggregate_type: str) -> EventSpec:
    return EventSpec(payload.__name__, payload, topic, aggregate_type)


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
        _spec(ev.ExecutionRequested, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.ExecutionStarted, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepStarted, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepCompleted, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepFailed, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepRetryScheduled, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepUsageRecorded, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.StepSkipped, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.ExecutionCancelRequested, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.ExecutionFinished, topics.EXECUTOR_EXECUTIONS, "Execution"),
        _spec(ev.QualityAssessed, topics.QUALITY, "RecipeQuality"),
        _spec(ev.LearningRecorded, topics.QUALITY, "RecipeQuality"),
        _spec(ev.AgentMetricsUpdated, topics.QUALITY, "AgentMetrics"),
        _spec(ev.ListingSubmitted, topics.MARKETPLACE, "Listing"),
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


def spec_for(event_type: str) -> EventSpec | None:
    return EVENT_SPECS.get(event_type)


def topic_for(event_type: str) -> str:
    spec = EVENT_SPECS.get(event_type)
    if spec is None:
        raise KeyError(f"unknown event type {event_type!r}")
    return spec.topic


def upcast(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    spec = EVENT_SPECS.get(event_type)
    target = spec.schema_version if spec else version
    while version < target:
        payload = UPCASTERS[(event_type, version)](payload)
        version += 1
    return payload


def payload_of(envelope: Envelope) -> EventPayload:
    spec = EVENT_SPECS.get(envelope.event_type)
    if spec is None:
        raise KeyError(f"unknown event type {envelope.event_type!r}")
    return spec.payload.model_validate(upcast(envelope.event_type, envelope.schema_version, envelope.payload))


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

"""Every v1 event payload, by owning service."""

from sous_events.events.catalog import (
    AgentRegistered,
    AgentRemoved,
    AgentUpdated,
    RecipeCreated,
    RecipeDeleted,
    RecipeUpdated,
)
from sous_events.events.executor import (
    ExecutionCancelRequested,
    ExecutionFinished,
    ExecutionRequested,
    ExecutionStarted,
    StepCompleted,
    StepFailed,
    StepRetryScheduled,
    StepSkipped,
    StepStarted,
)
from sous_events.events.marketplace import ListingApproved, ListingRejected, ListingSubmitted, RecipeInstalled
from sous_events.events.quality import AgentMetricsUpdated, LearningRecorded, QualityAssessed

__all__ = [
    "AgentMetricsUpdated",
    "AgentRegistered",
    "AgentRemoved",
    "AgentUpdated",
    "ExecutionCancelRequested",
    "ExecutionFinished",
    "ExecutionRequested",
    "ExecutionStarted",
    "LearningRecorded",
    "ListingApproved",
    "ListingRejected",
    "ListingSubmitted",
    "QualityAssessed",
    "RecipeCreated",
    "RecipeDeleted",
    "RecipeInstalled",
    "RecipeUpdated",
    "StepCompleted",
    "StepFailed",
    "StepRetryScheduled",
    "StepSkipped",
    "StepStarted",
]

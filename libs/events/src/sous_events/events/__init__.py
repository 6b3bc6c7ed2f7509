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
from sous_events.events.workflows import (
    WorkflowCreated,
    WorkflowDeleted,
    WorkflowPlanRejected,
    WorkflowRunFinished,
    WorkflowRunRequested,
    WorkflowStageCompleted,
    WorkflowStageFailed,
    WorkflowStageStarted,
    WorkflowUpdated,
)

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
    "WorkflowCreated",
    "WorkflowDeleted",
    "WorkflowPlanRejected",
    "WorkflowRunFinished",
    "WorkflowRunRequested",
    "WorkflowStageCompleted",
    "WorkflowStageFailed",
    "WorkflowStageStarted",
    "WorkflowUpdated",
]

"""Typed contracts: the state that crosses service boundaries inside event payloads and API answers."""

from sous_events.contracts.agent import (
    AgentConfiguration,
    AgentDefinition,
    AgentMetricsSnapshot,
    AgentSnapshot,
    ModelConfig,
)
from sous_events.contracts.base import Record, Snapshot
from sous_events.contracts.execution import StepOverride, StepResult, StepStatus, TokenUsage, ToolCallRecord
from sous_events.contracts.promotion import PromotionReplay, PromotionReport, ReplayOutcome
from sous_events.contracts.quality import (
    AnalysisSummary,
    Bottleneck,
    LearningData,
    Pattern,
    PerformanceMetrics,
    StepDuration,
    Suggestion,
)
from sous_events.contracts.recipe import (
    ClonedFrom,
    ExecutionConfig,
    InputSpec,
    OutputSpec,
    RecipeDefinition,
    RecipeSnapshot,
    RecipeStatistics,
    RecipeStep,
    ScheduleConfig,
)
from sous_events.contracts.workflow import WorkflowSnapshot, WorkflowTotals

__all__ = [
    "AgentConfiguration",
    "AgentDefinition",
    "AgentMetricsSnapshot",
    "AgentSnapshot",
    "AnalysisSummary",
    "Bottleneck",
    "ClonedFrom",
    "ExecutionConfig",
    "InputSpec",
    "LearningData",
    "ModelConfig",
    "OutputSpec",
    "Pattern",
    "PerformanceMetrics",
    "PromotionReplay",
    "PromotionReport",
    "RecipeDefinition",
    "RecipeSnapshot",
    "RecipeStatistics",
    "RecipeStep",
    "Record",
    "ReplayOutcome",
    "ScheduleConfig",
    "Snapshot",
    "StepDuration",
    "StepOverride",
    "StepResult",
    "StepStatus",
    "Suggestion",
    "TokenUsage",
    "ToolCallRecord",
    "WorkflowSnapshot",
    "WorkflowTotals",
]

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

__all__ = [
    "AgentConfiguration",
    "AgentDefinition",
    "AgentMetricsSnapshot",
    "AgentSnapshot",
    "ClonedFrom",
    "ExecutionConfig",
    "InputSpec",
    "ModelConfig",
    "OutputSpec",
    "RecipeDefinition",
    "RecipeSnapshot",
    "RecipeStatistics",
    "RecipeStep",
    "Record",
    "ScheduleConfig",
    "Snapshot",
    "StepOverride",
    "StepResult",
    "StepStatus",
    "TokenUsage",
    "ToolCallRecord",
]

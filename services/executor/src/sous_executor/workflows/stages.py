"""The nine stages of a workflow run, in order."""

from __future__ import annotations

STAGES: tuple[str, ...] = (
    "decomposition",
    "agent_selection",
    "context_engineering",
    "agent_execution",
    "result_aggregation",
    "learning_update",
    "quality_assessment",
    "memory_storage",
    "response_generation",
)

DECOMPOSITION, SELECTION, CONTEXT, EXECUTION, AGGREGATION, LEARNING, QUALITY, MEMORY, RESPONSE = range(1, 10)


def stage_name(number: int) -> str:
    return STAGES[number - 1]

"""Quality events: assessments, learning analyses and agent metrics."""

from __future__ import annotations

from typing import Any

from sous_events.contracts import AgentMetricsSnapshot
from sous_events.envelope import EventPayload


class QualityAssessed(EventPayload):
    """v2: `template_id` (v1: `recipe_id`), the recipe assessed."""

    template_id: str
    execution_id: str
    quality_score: float
    rolling_score: float
    breakdown: dict[str, float]
    grade: str
    bottlenecks: list[dict[str, Any]] = []


class LearningRecorded(EventPayload):
    """v2: `template_id` (v1: `recipe_id`)."""

    template_id: str
    execution_id: str
    patterns: list[dict[str, Any]] = []
    suggestions: list[dict[str, Any]] = []
    performance_metrics: dict[str, Any] = {}
    learning_data: dict[str, Any] = {}


class AgentMetricsUpdated(EventPayload):
    agent_id: str
    metrics: AgentMetricsSnapshot

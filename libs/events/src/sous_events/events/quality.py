"""Quality events: assessments, learning analyses and agent metrics."""

from __future__ import annotations

from pydantic import Field

from sous_events.contracts import (
    AgentMetricsSnapshot,
    Bottleneck,
    Pattern,
    PerformanceMetrics,
    Suggestion,
)
from sous_events.envelope import EventPayload


class QualityAssessed(EventPayload):
    """v2: `template_id` (v1: `recipe_id`), the recipe assessed.

    `counted` is false for a run in which no step ran (every result reused from an earlier run, or skipped):
    it is scored, but it is no new evidence of the recipe's quality, so neither the recipe's rolling score
    nor its count of assessed runs moves (`rolling_score` repeats the recipe's, or is the run's own score
    when the recipe has none yet). Events written before the field count."""

    template_id: str
    execution_id: str
    quality_score: float
    rolling_score: float
    breakdown: dict[str, float]
    grade: str
    bottlenecks: list[Bottleneck] = []
    # Written only when false, so an assessment that counts keeps the shape it had before the field.
    counted: bool = Field(default=True, exclude_if=lambda counted: counted)


class LearningRecorded(EventPayload):
    """One run's analysis. v3: the run's analysis only, with `analyzed_at`; the recipe's learning_data is the
    fold of its LearningRecorded events (sous_events.learning_fold), which v2 carried whole as `learning_data`.
    v2: `template_id` (v1: `recipe_id`)."""

    template_id: str
    execution_id: str
    analyzed_at: str
    patterns: list[Pattern] = []
    suggestions: list[Suggestion] = []
    performance_metrics: PerformanceMetrics = Field(default_factory=PerformanceMetrics)


class AgentMetricsUpdated(EventPayload):
    agent_id: str
    metrics: AgentMetricsSnapshot

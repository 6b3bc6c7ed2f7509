"""What the quality service reports about an execution: bottlenecks, patterns, suggestions, metrics.

Every field has a default, so events stored before these shapes were typed still decode; a snapshot written
out again carries exactly the fields it was given (a pattern without a step has no `step_id`).
"""

from __future__ import annotations

from pydantic import Field

from sous_events.contracts.base import Snapshot


class Bottleneck(Snapshot):
    """A step that held the run back: `slow_step`, `failed_step` or `high_retry_step`."""

    type: str = ""
    step_id: str = ""
    step_index: int = 0
    agent_id: str = ""
    description: str = ""


class Pattern(Snapshot):
    """Something learned from one execution (`failure`, `step_failure`, `slow_step`, `empty_output`,
    `retry_needed`, `missing_input`), with its severity and the detail its type carries."""

    type: str = ""
    severity: str = ""
    description: str = ""
    step_id: str | None = None
    duration_ms: float | None = None
    retries: int | None = None
    input: str | None = None


class Suggestion(Snapshot):
    """A change to the recipe the patterns call for (`prompt_rewrite`, `model_upgrade`, `tool_addition`)."""

    type: str = ""
    priority: str = ""
    message: str = ""
    step_id: str | None = None


class StepDuration(Snapshot):
    step_id: str = ""
    duration_ms: float | None = None


class PerformanceMetrics(Snapshot):
    total_duration_ms: float | None = None
    step_durations: list[StepDuration] = Field(default_factory=list)
    success_rate: float = 0.0
    total_retries: int = 0
    error_count: int = 0
    total_steps: int = 0
    successful_steps: int = 0
    total_tokens: int | None = None
    total_cost_usd: float = 0.0


class AnalysisSummary(Snapshot):
    """One analysis as the recipe's learning data keeps it (the last 50)."""

    execution_id: str = ""
    analyzed_at: str = ""
    pattern_count: int = 0
    suggestion_count: int = 0
    performance_metrics: PerformanceMetrics = Field(default_factory=PerformanceMetrics)


class LearningData(Snapshot):
    """A recipe's learning data: its recent analyses and the latest one's findings."""

    analyses: list[AnalysisSummary] = Field(default_factory=list)
    latest_patterns: list[Pattern] = Field(default_factory=list)
    latest_suggestions: list[Suggestion] = Field(default_factory=list)
    latest_performance: PerformanceMetrics = Field(default_factory=PerformanceMetrics)
    last_analyzed_at: str | None = None

"""Request and response bodies of the quality routes (the Quality section of docs/api.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AssessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    execution_id: str = Field(min_length=1, max_length=64)
    # Learnings once came from the caller and could steer reliability; they are computed here only.
    learnings: None = Field(
        default=None,
        description="Refused when set: learning patterns are computed by the server from the execution.",
    )


class LearnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    execution_id: str = Field(min_length=1, max_length=64)


class Breakdown(BaseModel):
    completeness: float
    accuracy: float
    efficiency: float
    reliability: float
    cost: float


class AssessResponse(BaseModel):
    execution_id: str
    recipe_id: str
    assessed_at: str
    quality_score: float
    rolling_score: float
    breakdown: Breakdown
    grade: str
    bottlenecks: list[dict[str, Any]]


class LearnResponse(BaseModel):
    execution_id: str
    recipe_id: str
    analyzed_at: str
    patterns: list[dict[str, Any]]
    suggestions: list[dict[str, Any]]
    performance_metrics: dict[str, Any]


class SuggestionsResponse(BaseModel):
    recipe_id: str
    quality_score: float | None
    suggestions: list[dict[str, Any]]
    patterns: list[dict[str, Any]]
    performance_metrics: dict[str, Any]
    last_analyzed_at: str | None
    analysis_count: int


class HistoryPoint(BaseModel):
    execution_id: str
    assessed_at: str
    quality_score: float
    rolling_score: float
    grade: str
    breakdown: Breakdown
    recipe_revision: int | None
    models: list[str]


class HistoryResponse(BaseModel):
    recipe_id: str
    quality_score: float | None
    assessment_count: int
    points: list[HistoryPoint]

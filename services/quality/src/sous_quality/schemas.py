"""Request and response bodies of the quality routes (the Quality section of docs/api.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class NamesTheRecipe(BaseModel):
    """Answers name the recipe by `template_id`; `recipe_id` is its former name, kept for older clients."""

    template_id: str = Field(description="The recipe's template id")
    recipe_id: str = Field(deprecated=True, description="Former name of `template_id` (the same value)")

    @model_validator(mode="before")
    @classmethod
    def _both_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            name = data.get("template_id") or data.get("recipe_id")
            data = {**data, "template_id": name, "recipe_id": name}
        return data


class Breakdown(BaseModel):
    completeness: float
    accuracy: float
    efficiency: float
    reliability: float
    cost: float


class AssessResponse(NamesTheRecipe):
    execution_id: str
    assessed_at: str
    quality_score: float
    rolling_score: float
    breakdown: Breakdown
    grade: str
    bottlenecks: list[dict[str, Any]]
    counted: bool = Field(
        True,
        description="False when no step ran in the run (every result reused or skipped): it is scored, but "
        "neither the recipe's rolling score nor its count of assessed runs moves.",
    )


class LearnResponse(NamesTheRecipe):
    execution_id: str
    analyzed_at: str
    patterns: list[dict[str, Any]]
    suggestions: list[dict[str, Any]]
    performance_metrics: dict[str, Any]


class SuggestionsResponse(NamesTheRecipe):
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


class HistoryResponse(NamesTheRecipe):
    quality_score: float | None
    assessment_count: int
    points: list[HistoryPoint]

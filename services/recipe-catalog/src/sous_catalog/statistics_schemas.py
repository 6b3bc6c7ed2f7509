"""Answers of the catalog's statistics routes: categories and the dashboard (schemas.py holds the rest)."""

from __future__ import annotations

from pydantic import BaseModel


class Category(BaseModel):
    name: str
    count: int


class CategoryList(BaseModel):
    categories: list[Category]


class DashboardOverview(BaseModel):
    total_recipes: int
    total_executions: int
    avg_quality_score: float | None
    avg_success_rate: float | None


class StatusBreakdown(BaseModel):
    completed: int = 0
    failed: int = 0
    running: int = 0
    pending: int = 0
    cancelled: int = 0


class TopRecipe(BaseModel):
    template_id: str
    name: str
    use_count: int
    success_rate: float
    popularity: float
    quality_score: float | None


class Dashboard(BaseModel):
    overview: DashboardOverview
    status_breakdown: StatusBreakdown
    top_recipes: list[TopRecipe]

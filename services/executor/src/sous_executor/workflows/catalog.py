"""Saving a run's plan as a recipe: a call to the catalog, which owns recipes, as the caller."""

from __future__ import annotations

import json
from typing import Any

import httpx

from sous_service.domain_errors import (
    Conflict,
    DependencyFailed,
    DomainError,
    FieldError,
    Forbidden,
    InputInvalid,
    NotFound,
    Unavailable,
)
from sous_service.internal_client import ContextAuth
from sous_service.internal_context import InternalContext

RECIPES_PATH = "/api/workflow-recipes"


async def create_recipe(
    base_url: str, secret: str, ctx: InternalContext, recipe: dict[str, Any], timeout_s: float = 10.0
) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=timeout_s, auth=ContextAuth(ctx, secret, "catalog")) as client:
            response = await client.post(f"{base_url.rstrip('/')}{RECIPES_PATH}", json=recipe)
    except httpx.HTTPError as exc:
        raise Unavailable(f"the catalog could not be reached: {exc}", code="catalog_unavailable") from exc
    try:
        answer: Any = response.json()
    except ValueError:
        answer = {}
    if response.status_code == 201 and isinstance(answer, dict):
        return answer
    if isinstance(answer, dict) and response.status_code in (409, 422, 403, 404):
        raise refusal(response.status_code, answer, template_id=str(recipe.get("template_id") or ""))
    raise DependencyFailed(f"the catalog answered {response.status_code}", code="catalog_error")


def refusal(status: int, answer: dict[str, Any], *, template_id: str) -> DomainError:
    """The catalog's refusal as the same domain refusal here, so the caller sees the catalog's status."""
    detail = answer.get("detail")
    code = str(answer.get("code") or "catalog_refused")
    text = f"the catalog refused the recipe: {detail if isinstance(detail, str) else json.dumps(detail)}"
    if status == 422:
        errors = [
            FieldError(
                field=str(e.get("field") or "recipe"),
                message=str(e.get("message") or ""),
                type=str(e.get("type") or "value_error"),
            )
            for e in answer.get("errors") or []
            if isinstance(e, dict)
        ]
        return InputInvalid(errors or [FieldError(field="recipe", message=text, type="value_error")])
    if status == 404:
        return NotFound("recipe", template_id, detail=text, code=code)
    if status == 403:
        return Forbidden(text, code=code)
    return Conflict(text, code=code)

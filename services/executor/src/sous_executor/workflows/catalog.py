"""Saving a run's plan as a recipe: a call to the catalog, which owns recipes, as the caller."""

from __future__ import annotations

import json
from typing import Any

import httpx

from sous_service import internal_context as ic
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

RECIPES_PATH = "/api/workflow-recipes"


def _context_header(ctx: ic.InternalContext, secret: str, body: bytes) -> str:
    # Bound to this one request where the platform binds contexts; a plain signature otherwise.
    signer = getattr(ic, "sign_request", None)
    if signer is not None:
        return str(signer(ctx, secret, method="POST", target=RECIPES_PATH, body=body, service="catalog"))
    return ic.sign_context(ctx, secret)


async def create_recipe(
    base_url: str, secret: str, ctx: ic.InternalContext, recipe: dict[str, Any], timeout_s: float = 10.0
) -> dict[str, Any]:
    body = json.dumps(recipe).encode()
    headers = {"Content-Type": "application/json", ic.CONTEXT_HEADER: _context_header(ctx, secret, body)}
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(f"{base_url.rstrip('/')}{RECIPES_PATH}", content=body, headers=headers)
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

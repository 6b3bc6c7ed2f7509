"""Saving a run's plan as a recipe: a call to the catalog, which owns recipes, as the caller."""

from __future__ import annotations

import json
from typing import Any

import httpx

from sous_service import internal_context as ic
from sous_service.errors import ApiError

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
        raise ApiError(503, "catalog_unavailable", f"the catalog could not be reached: {exc}") from exc
    try:
        answer: Any = response.json()
    except ValueError:
        answer = {}
    if response.status_code == 201 and isinstance(answer, dict):
        return answer
    detail = answer.get("detail") if isinstance(answer, dict) else None
    code = answer.get("code") if isinstance(answer, dict) else None
    if response.status_code in (409, 422, 403, 404):
        raise ApiError(
            response.status_code,
            str(code or "catalog_refused"),
            f"the catalog refused the recipe: {detail if isinstance(detail, str) else json.dumps(detail)}",
        )
    raise ApiError(502, "catalog_error", f"the catalog answered {response.status_code}")

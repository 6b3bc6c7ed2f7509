"""Path aliases: the origin client's paths, rewritten to Sous routes before the routing table sees them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from sous_service.errors import ApiError, FieldError, InputInvalid

_ITEMS = re.compile(r"^/api/marketplace/items(?:/(?P<id>[^/]+)(?:/(?P<action>approve|install))?)?$")
_STEP_LOGS = re.compile(r"^(?P<execution>/api/workflow-recipes/[^/]+/executions/[^/]+)/steps/(?P<order>[^/]+)/logs$")
# What the marketplace holds: recipes. Asking for another item type answers an empty page.
MARKET_ITEM_TYPES = ("recipe", "recipes")


@dataclass(frozen=True)
class Rewrite:
    """The Sous request an origin call becomes, and the view its answer is given in (None: Sous's own)."""

    path: str
    query: str
    view: str | None = None
    step_order: int | None = None
    empty_page: bool = False


def _market_query(query: str) -> tuple[str, bool]:
    """`type, category, search, featured, limit, offset` → the listings' `category, search, skip, limit`."""
    out: list[tuple[str, str]] = []
    empty = False
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "type":
            empty = value.lower() not in MARKET_ITEM_TYPES
        elif key == "offset":
            out.append(("skip", value))
        elif key in ("category", "search", "limit", "sort_by", "skip"):
            out.append((key, value))
        elif key == "featured":
            # Listings have no featured flag: every approved listing is offered, featured or not.
            continue
        else:
            raise InputInvalid([FieldError(field=f"query.{key}", message="unknown query parameter", type="extra")])
    return urlencode(out), empty


def rewrite(method: str, path: str, query: str) -> Rewrite | None:
    """The Sous form of an origin call, or None when the path is already Sous's own."""
    if len(path) > len("/api/") and path.endswith("/") and path.startswith("/api/"):
        # `/api/agents/` and every other trailing-slash spelling: the same resource as without it.
        inner = rewrite(method, path.rstrip("/"), query)
        return inner or Rewrite(path.rstrip("/"), query, view="agents" if path == "/api/agents/" else None)
    items = _ITEMS.match(path)
    if items:
        listing, action = items.group("id"), items.group("action")
        if listing is None:
            sous_query, empty = _market_query(query)
            return Rewrite("/api/marketplace/listings", sous_query, view="market_items", empty_page=empty)
        if action == "install":
            return Rewrite(f"/api/workflow-recipes/install/{listing}", query)
        if action == "approve":
            return Rewrite(f"/api/marketplace/listings/{listing}/approve", query)
        return Rewrite(f"/api/marketplace/listings/{listing}", query, view="market_item" if method == "GET" else None)
    logs = _STEP_LOGS.match(path)
    if logs and method in ("GET", "HEAD"):
        try:
            order = int(logs.group("order"))
        except ValueError as exc:
            raise ApiError(404, "step_not_found", f"no step {logs.group('order')!r} in this execution") from exc
        return Rewrite(logs.group("execution"), "", view="step_logs", step_order=order)
    return None

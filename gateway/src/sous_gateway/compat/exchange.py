"""Applying the compatibility layer to one request: its path, its body and the view of its answer."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sous_gateway.compat import requests, responses
from sous_gateway.compat.paths import Rewrite, rewrite

View = Callable[[responses.Json], responses.Json]


def rewrite_request_path(request: Request) -> Rewrite | None:
    """Point the request at its Sous route (the proxy forwards `raw_path` and `query_string`)."""
    scope = request.scope
    alias = rewrite(request.method, scope["path"], scope.get("query_string", b"").decode("latin-1"))
    if alias is not None:
        scope["path"] = alias.path
        scope["raw_path"] = alias.path.encode()
        scope["query_string"] = alias.query.encode("latin-1")
    return alias


def adapt_body(method: str, pattern: str, body: bytes) -> bytes:
    return requests.adapt(method, pattern, body)


def view_for(alias: Rewrite | None, method: str, pattern: str, path: str) -> View | None:
    if alias is not None and alias.view == "step_logs" and alias.step_order is not None:
        order = alias.step_order
        return lambda payload: responses.step_logs(payload, order)
    if alias is not None and alias.view == "agents":
        return responses.agents_view
    if alias is not None and alias.view == "market_items":
        empty = alias.empty_page
        return lambda payload: responses.market_items(payload, empty)
    if alias is not None and alias.view == "market_item":
        return responses.market_item
    route_view = responses.ROUTE_VIEWS.get((method, pattern))
    if route_view is None:
        return None
    return lambda payload: route_view(payload, path)


async def reshaped(response: StreamingResponse, view: View) -> Response:
    """The upstream answer read whole and given in the view; errors and non-JSON answers pass unchanged."""
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[misc]
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    is_json = response.headers.get("content-type", "").startswith("application/json")
    if response.status_code >= 400 or not is_json:
        return Response(body, status_code=response.status_code, headers=headers)
    content = json.dumps(view(json.loads(body))).encode()
    return Response(content, status_code=response.status_code, headers=headers)

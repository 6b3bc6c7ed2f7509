"""The one routing table: (method, public path) -> owning service and required scope.

Pure rules, no I/O. Services serve their routes at the same public path, so the gateway forwards
the path unchanged. Where patterns overlap (the `/api/workflow-recipes` prefix is shared by four
services), the most specific pattern wins: at the first segment where two patterns differ, a
literal beats a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sous_gateway import scopes as s

Service = Literal["catalog", "executor", "quality", "marketplace", "gateway"]
AuthMode = Literal["caller", "webhook"]

READ_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    service: Service
    scope: str | None
    auth: AuthMode = "caller"
    # Long-lived responses (Server-Sent Events): no read timeout towards the upstream.
    stream: bool = False
    # A stream only when the caller asks for one (Accept: text/event-stream), a plain answer otherwise.
    stream_when_asked: bool = False
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", _split(self.pattern))

    def specificity(self) -> tuple[int, ...]:
        return tuple(0 if _is_param(seg) else 1 for seg in self.segments)


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, str]


@dataclass(frozen=True)
class NoMatch:
    """`allowed` is empty for an unknown path (404) and lists the methods of a known path (405)."""

    allowed: tuple[str, ...] = ()


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.removeprefix("/").split("/"))


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _bind(pattern: tuple[str, ...], path: tuple[str, ...], template: bool) -> dict[str, str] | None:
    if len(pattern) != len(path):
        return None
    params: dict[str, str] = {}
    for want, got in zip(pattern, path, strict=True):
        if _is_param(want):
            if not got:
                return None
            params[want[1:-1]] = got
        elif (template and _is_param(got)) or want != got:
            return None
    return params


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._by_length: dict[int, list[Route]] = {}
        for route in sorted(routes, key=Route.specificity, reverse=True):
            self._by_length.setdefault(len(route.segments), []).append(route)

    def resolve(self, method: str, path: str, *, template: bool = False) -> Match | NoMatch:
        """Find the route for a request. With `template`, `path` is an OpenAPI path template."""
        segments = _split(path)
        method = method.upper()
        candidates: list[tuple[Route, dict[str, str]]] = []
        for route in self._by_length.get(len(segments), []):
            params = _bind(route.segments, segments, template)
            if params is not None:
                candidates.append((route, params))
        for route, params in candidates:
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return Match(route, params)
        if not candidates:
            return NoMatch()
        best = candidates[0][0].specificity()
        allowed = sorted({r.method for r, _ in candidates if r.specificity() == best})
        return NoMatch(tuple(allowed))


def _crud(pattern: str, service: Service, methods: tuple[str, ...], read: str, write: str) -> list[Route]:
    return [Route(m, pattern, service, read if m in READ_METHODS else write) for m in methods]


def _build() -> list[Route]:
    recipes = "/api/workflow-recipes"
    execution = f"{recipes}/{{id}}/executions/{{eid}}"
    r: list[Route] = []
    # catalog
    r += _crud("/api/agents", "catalog", ("GET", "POST", "PUT", "PATCH", "DELETE"), s.RECIPES_READ, s.RECIPES_WRITE)
    r += _crud(
        "/api/agents/{id}", "catalog", ("GET", "POST", "PUT", "PATCH", "DELETE"), s.RECIPES_READ, s.RECIPES_WRITE
    )
    r += _crud(recipes, "catalog", ("GET", "POST"), s.RECIPES_READ, s.RECIPES_WRITE)
    r += _crud(f"{recipes}/{{id}}", "catalog", ("GET", "PUT", "DELETE"), s.RECIPES_READ, s.RECIPES_WRITE)
    r += [
        Route("POST", f"{recipes}/{{id}}/use", "catalog", s.RECIPES_WRITE),
        Route("GET", f"{recipes}/{{id}}/history", "catalog", s.RECIPES_READ),
        Route("GET", f"{recipes}/{{id}}/versions", "catalog", s.RECIPES_READ),
        Route("POST", f"{recipes}/{{id}}/versions", "catalog", s.RECIPES_WRITE),
        Route("GET", f"{recipes}/{{id}}/versions/{{revision}}", "catalog", s.RECIPES_READ),
        # Promotion replays executions as the caller: the catalog also checks executions:run.
        Route("POST", f"{recipes}/{{id}}/versions/{{revision}}/promote", "catalog", s.RECIPES_WRITE),
        Route("GET", f"{recipes}/categories/list", "catalog", s.RECIPES_READ),
        Route("GET", f"{recipes}/featured/list", "catalog", s.RECIPES_READ),
        Route("GET", f"{recipes}/stats/dashboard", "catalog", s.RECIPES_READ),
    ]
    # executor
    r += [
        Route("POST", f"{recipes}/{{id}}/execute", "executor", s.EXECUTIONS_RUN, stream_when_asked=True),
        Route("GET", f"{recipes}/{{id}}/executions", "executor", s.EXECUTIONS_READ),
        Route("GET", execution, "executor", s.EXECUTIONS_READ),
        Route("POST", f"{execution}/cancel", "executor", s.EXECUTIONS_RUN),
        Route("POST", f"{execution}/rerun", "executor", s.EXECUTIONS_RUN),
        Route("POST", f"{execution}/replay", "executor", s.EXECUTIONS_RUN),
        Route("GET", f"{execution}/replay-report", "executor", s.EXECUTIONS_READ),
        Route("GET", f"{execution}/events", "executor", s.EXECUTIONS_READ, stream=True),
        Route("GET", "/api/workflows/active", "executor", s.EXECUTIONS_READ),
        Route("GET", "/api/workflows/stats/dashboard", "executor", s.EXECUTIONS_READ),
    ]
    # executor: workflows (the nine-stage pipeline runs on the executor's engine)
    workflow = "/api/workflows/{id}"
    workflow_run = f"{workflow}/runs/{{rid}}"
    r += _crud("/api/workflows", "executor", ("GET", "POST"), s.RECIPES_READ, s.RECIPES_WRITE)
    r += _crud(workflow, "executor", ("GET", "PUT", "DELETE"), s.RECIPES_READ, s.RECIPES_WRITE)
    r += [
        Route("GET", "/api/workflows/memory/search", "executor", s.EXECUTIONS_READ),
        Route("POST", f"{workflow}/execute", "executor", s.EXECUTIONS_RUN),
        Route("GET", f"{workflow}/runs", "executor", s.EXECUTIONS_READ),
        Route("GET", workflow_run, "executor", s.EXECUTIONS_READ),
        Route("GET", f"{workflow_run}/events", "executor", s.EXECUTIONS_READ, stream=True),
        Route("POST", f"{workflow_run}/save-as-recipe", "executor", s.RECIPES_WRITE),
    ]
    r += [
        Route("GET", "/api/tools", "executor", s.EXECUTIONS_READ),
        Route("POST", "/api/webhooks/recipe/{webhook_id}", "executor", None, auth="webhook"),
        Route("GET", "/api/secrets", "executor", s.SECRETS_ADMIN),
        Route("GET", "/api/secrets/{name}", "executor", s.SECRETS_ADMIN),
        Route("PUT", "/api/secrets/{name}", "executor", s.SECRETS_ADMIN),
        Route("DELETE", "/api/secrets/{name}", "executor", s.SECRETS_ADMIN),
    ]
    # quality
    r += [
        Route("POST", f"{recipes}/{{id}}/assess-quality", "quality", s.QUALITY_WRITE),
        Route("POST", f"{recipes}/{{id}}/learn", "quality", s.QUALITY_WRITE),
        Route("GET", f"{recipes}/{{id}}/suggestions", "quality", s.RECIPES_READ),
        Route("GET", f"{recipes}/{{id}}/quality/history", "quality", s.RECIPES_READ),
    ]
    # marketplace
    market = "/api/marketplace"
    r += [
        Route("POST", f"{recipes}/submit", "marketplace", s.MARKETPLACE_SUBMIT),
        Route("POST", f"{recipes}/install/{{listing_id}}", "marketplace", s.MARKETPLACE_SUBMIT),
        Route("GET", f"{market}/listings", "marketplace", s.RECIPES_READ),
        Route("GET", f"{market}/listings/{{id}}", "marketplace", s.RECIPES_READ),
        Route("DELETE", f"{market}/listings/{{id}}", "marketplace", s.MARKETPLACE_SUBMIT),
        Route("GET", f"{market}/submissions", "marketplace", s.MARKETPLACE_SUBMIT),
        Route("GET", f"{market}/submissions/{{id}}", "marketplace", s.MARKETPLACE_SUBMIT),
        Route("GET", f"{market}/queue", "marketplace", s.MARKETPLACE_MODERATE),
        Route("POST", f"{market}/listings/{{id}}/approve", "marketplace", s.MARKETPLACE_MODERATE),
        Route("POST", f"{market}/listings/{{id}}/reject", "marketplace", s.MARKETPLACE_MODERATE),
    ]
    # the gateway's own
    r += [
        Route("POST", "/api/api-keys", "gateway", s.KEYS_ADMIN),
        Route("GET", "/api/api-keys", "gateway", s.KEYS_ADMIN),
        Route("DELETE", "/api/api-keys/{id}", "gateway", s.KEYS_ADMIN),
    ]
    return r


ROUTES: list[Route] = _build()


def default_table() -> RouteTable:
    return RouteTable(ROUTES)

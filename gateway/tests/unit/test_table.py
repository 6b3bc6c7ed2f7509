"""The routing table: every public route maps to the right service and scope."""

from __future__ import annotations

import pytest

from sous_gateway.routing.table import ROUTES, Match, NoMatch, default_table

pytestmark = pytest.mark.unit

R = "/api/workflow-recipes"
E = f"{R}/r1/executions/e1"

EXPECTED = [
    ("GET", "/api/agents", "catalog", "recipes:read"),
    ("POST", "/api/agents", "catalog", "recipes:write"),
    ("GET", "/api/agents/a1", "catalog", "recipes:read"),
    ("PUT", "/api/agents/a1", "catalog", "recipes:write"),
    ("PATCH", "/api/agents/a1", "catalog", "recipes:write"),
    ("DELETE", "/api/agents/a1", "catalog", "recipes:write"),
    ("GET", R, "catalog", "recipes:read"),
    ("POST", R, "catalog", "recipes:write"),
    ("GET", f"{R}/r1", "catalog", "recipes:read"),
    ("PUT", f"{R}/r1", "catalog", "recipes:write"),
    ("DELETE", f"{R}/r1", "catalog", "recipes:write"),
    ("POST", f"{R}/r1/use", "catalog", "recipes:write"),
    ("GET", f"{R}/r1/history", "catalog", "recipes:read"),
    ("GET", f"{R}/r1/versions", "catalog", "recipes:read"),
    ("POST", f"{R}/r1/versions", "catalog", "recipes:write"),
    ("GET", f"{R}/r1/versions/4", "catalog", "recipes:read"),
    ("POST", f"{R}/r1/versions/4/promote", "catalog", "recipes:write"),
    ("GET", f"{R}/categories/list", "catalog", "recipes:read"),
    ("GET", f"{R}/featured/list", "catalog", "recipes:read"),
    ("GET", f"{R}/stats/dashboard", "catalog", "recipes:read"),
    ("GET", "/api/workflows", "executor", "recipes:read"),
    ("POST", f"{R}/r1/execute", "executor", "executions:run"),
    ("GET", f"{R}/r1/executions", "executor", "executions:read"),
    ("GET", E, "executor", "executions:read"),
    ("POST", f"{E}/cancel", "executor", "executions:run"),
    ("POST", f"{E}/rerun", "executor", "executions:run"),
    ("POST", f"{E}/replay", "executor", "executions:run"),
    ("GET", f"{E}/replay-report", "executor", "executions:read"),
    ("GET", f"{E}/events", "executor", "executions:read"),
    ("GET", "/api/workflows/active", "executor", "executions:read"),
    ("GET", "/api/workflows/stats/dashboard", "executor", "executions:read"),
    ("GET", "/api/tools", "executor", "executions:read"),
    ("POST", "/api/workflows", "executor", "recipes:write"),
    ("GET", "/api/workflows/w1", "executor", "recipes:read"),
    ("PUT", "/api/workflows/w1", "executor", "recipes:write"),
    ("DELETE", "/api/workflows/w1", "executor", "recipes:write"),
    ("GET", "/api/workflows/memory/search", "executor", "executions:read"),
    ("POST", "/api/workflows/w1/execute", "executor", "executions:run"),
    ("GET", "/api/workflows/w1/runs", "executor", "executions:read"),
    ("GET", "/api/workflows/w1/runs/r1", "executor", "executions:read"),
    ("GET", "/api/workflows/w1/runs/r1/events", "executor", "executions:read"),
    ("POST", "/api/workflows/w1/runs/r1/save-as-recipe", "executor", "recipes:write"),
    ("POST", "/api/webhooks/recipe/w1", "executor", None),
    ("POST", f"{R}/r1/assess-quality", "quality", "quality:write"),
    ("POST", f"{R}/r1/learn", "quality", "quality:write"),
    ("GET", f"{R}/r1/suggestions", "quality", "recipes:read"),
    ("GET", f"{R}/r1/quality/history", "quality", "recipes:read"),
    ("POST", f"{R}/submit", "marketplace", "marketplace:submit"),
    ("POST", f"{R}/install/l1", "marketplace", "marketplace:submit"),
    ("GET", "/api/marketplace/listings", "marketplace", "recipes:read"),
    ("GET", "/api/marketplace/listings/l1", "marketplace", "recipes:read"),
    ("DELETE", "/api/marketplace/listings/l1", "marketplace", "marketplace:submit"),
    ("GET", "/api/marketplace/submissions", "marketplace", "marketplace:submit"),
    ("GET", "/api/marketplace/queue", "marketplace", "marketplace:moderate"),
    ("POST", "/api/marketplace/listings/l1/approve", "marketplace", "marketplace:moderate"),
    ("POST", "/api/marketplace/listings/l1/reject", "marketplace", "marketplace:moderate"),
    ("POST", "/api/api-keys", "gateway", "keys:admin"),
    ("GET", "/api/api-keys", "gateway", "keys:admin"),
    ("DELETE", "/api/api-keys/k1", "gateway", "keys:admin"),
    ("GET", "/api/secrets", "executor", "secrets:admin"),
    ("GET", "/api/secrets/openai", "executor", "secrets:admin"),
    ("PUT", "/api/secrets/openai", "executor", "secrets:admin"),
    ("DELETE", "/api/secrets/openai", "executor", "secrets:admin"),
]


@pytest.mark.parametrize(("method", "path", "service", "scope"), EXPECTED)
def test_every_route_maps_to_its_service_and_scope(method, path, service, scope):
    match = default_table().resolve(method, path)
    assert isinstance(match, Match), (method, path, match)
    assert (match.route.service, match.route.scope) == (service, scope)


def test_the_table_has_no_untested_routes():
    table = default_table()
    covered = set()
    for method, path, _, _ in EXPECTED:
        match = table.resolve(method, path)
        assert isinstance(match, Match)
        covered.add((match.route.method, match.route.pattern))
    assert covered == {(r.method, r.pattern) for r in ROUTES if (r.method, r.pattern) in covered}
    # agents accept every method on both paths; everything else is listed above
    missing = {(r.method, r.pattern) for r in ROUTES} - covered
    assert missing <= {
        ("DELETE", "/api/agents"),
        ("PUT", "/api/agents"),
        ("PATCH", "/api/agents"),
        ("POST", "/api/agents/{id}"),
        ("GET", "/api/marketplace/submissions/{id}"),
    }


def test_the_shared_prefix_prefers_literal_segments():
    table = default_table()
    # a literal beats a parameter at the first segment where patterns differ
    match = table.resolve("POST", f"{R}/install/use")
    assert isinstance(match, Match) and match.route.service == "marketplace"
    assert match.params == {"listing_id": "use"}
    # GET of a recipe whose id happens to be a marketplace word still reaches the catalog
    match = table.resolve("GET", f"{R}/submit")
    assert isinstance(match, Match) and match.route.service == "catalog"
    match = table.resolve("GET", f"{R}/categories/history")
    assert isinstance(match, Match) and match.route.service == "catalog" and match.params == {"id": "categories"}


def test_unknown_paths_and_methods():
    table = default_table()
    assert table.resolve("GET", "/api/nothing") == NoMatch(())
    assert table.resolve("GET", f"{R}/r1/unknown") == NoMatch(())
    assert table.resolve("GET", "/api/agents/") == NoMatch(())
    assert table.resolve("PATCH", f"{R}/r1") == NoMatch(("DELETE", "GET", "PUT"))
    assert table.resolve("POST", f"{R}/stats/dashboard") == NoMatch(("GET",))
    head = table.resolve("HEAD", f"{R}/r1")
    assert isinstance(head, Match) and head.route.method == "GET"


def test_openapi_templates_match_parameters_only():
    table = default_table()
    match = table.resolve("get", f"{R}/{{template_id}}", template=True)
    assert isinstance(match, Match) and match.route.pattern == f"{R}/{{id}}"
    assert isinstance(table.resolve("post", f"{R}/{{x}}", template=True), NoMatch)
    match = table.resolve("post", f"{R}/submit", template=True)
    assert isinstance(match, Match) and match.route.service == "marketplace"

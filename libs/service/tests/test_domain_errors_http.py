"""Each domain exception maps, in one place, to its status, `{detail, code, ...}` body and headers."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sous_service import domain_errors as de
from sous_service.errors import install_error_handlers

pytestmark = pytest.mark.unit

CASES: list[tuple[de.DomainError, int, dict[str, object], dict[str, str]]] = [
    (de.NotFound("recipe", "r1"), 404, {"detail": "recipe 'r1' not found", "code": "not_found"}, {}),
    (
        de.NotFound("recipe", "r1", detail="recipe 'r1' has no revision 9"),
        404,
        {"detail": "recipe 'r1' has no revision 9", "code": "not_found"},
        {},
    ),
    (
        de.Conflict("in use", code="agent_in_use", recipes=["a", "b"]),
        409,
        {"detail": "in use", "code": "agent_in_use", "recipes": ["a", "b"]},
        {},
    ),
    (de.Conflict("moved on"), 409, {"detail": "moved on", "code": "conflict"}, {}),
    (de.Forbidden("locked", code="system_recipe"), 403, {"detail": "locked", "code": "system_recipe"}, {}),
    (
        de.RateLimited("too many", code="concurrency_limit", retry_after_s=5, limits={"active": 3}),
        429,
        {"detail": "too many", "code": "concurrency_limit", "limits": {"active": 3}},
        {"retry-after": "5"},
    ),
    (
        de.Unavailable("catalog away", code="catalog_unavailable"),
        503,
        {"detail": "catalog away", "code": "catalog_unavailable"},
        {},
    ),
    (
        de.Unavailable("broker away", retry_after_s=2),
        503,
        {"detail": "broker away", "code": "unavailable"},
        {"retry-after": "2"},
    ),
    (de.DependencyFailed("catalog said 500"), 502, {"detail": "catalog said 500", "code": "dependency_failed"}, {}),
    (de.DomainError("odd"), 400, {"detail": "odd", "code": "error"}, {}),
]


def _client(exc: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/refuse")
    async def refuse() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("exc", "status", "body", "headers"), CASES, ids=lambda c: type(c).__name__)
def test_each_domain_exception_has_its_status_body_and_headers(
    exc: de.DomainError, status: int, body: dict[str, object], headers: dict[str, str]
) -> None:
    response = _client(exc).get("/refuse")
    assert response.status_code == status
    assert response.json() == body
    for name, value in headers.items():
        assert response.headers[name] == value
    if not headers:
        assert "retry-after" not in response.headers


def test_invalid_input_is_a_422_with_every_field_path() -> None:
    exc = de.InputInvalid(
        [
            de.FieldError(field="steps[1].agent_id", message="unknown agent", type="value_error"),
            de.FieldError(field="name", message="too long", type="string_too_long"),
        ]
    )
    response = _client(exc).get("/refuse")
    assert response.status_code == 422
    assert response.json() == {
        "detail": "steps[1].agent_id: unknown agent",
        "code": "validation_error",
        "errors": [
            {"field": "steps[1].agent_id", "message": "unknown agent", "type": "value_error"},
            {"field": "name", "message": "too long", "type": "string_too_long"},
        ],
    }


def test_a_subclass_takes_its_ancestors_status() -> None:
    class ListingGone(de.NotFound):
        pass

    response = _client(ListingGone("listing", "l1")).get("/refuse")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_domain_module_imports_nothing_of_http() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(de))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[0] in ("fastapi", "starlette", "httpx")}

"""An unexpected error answers 500; the database or broker briefly out of reach answers 503 with Retry-After."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from sous_service.errors import install_error_handlers

pytestmark = pytest.mark.unit


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/database-gone")
    async def database_gone() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionResetError("connection was closed in the middle"))

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    return app


def test_a_lost_database_connection_is_a_503_the_client_may_retry() -> None:
    response = TestClient(_app(), raise_server_exceptions=False).get("/database-gone")
    assert response.status_code == 503
    assert response.json() == {"detail": "temporarily unavailable, retry shortly", "code": "unavailable"}
    assert response.headers["Retry-After"] == "1"


def test_a_bug_stays_a_500_without_details() -> None:
    response = TestClient(_app(), raise_server_exceptions=False).get("/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error", "code": "internal_error"}

"""A service refusing an oversized event answers 413 with the usual error shape, never a 500."""

import httpx
import pytest
from fastapi import FastAPI

from sous_events.store import EventTooLarge
from sous_service.errors import install_error_handlers

pytestmark = pytest.mark.unit


async def test_event_too_large_is_a_413() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def create() -> None:
        raise EventTooLarge("RecipeCreated", "r-1", 2_000_000, 921_600)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/things")
    assert response.status_code == 413
    assert response.json()["code"] == "event_too_large"
    assert "921600-byte event limit" in response.json()["detail"]

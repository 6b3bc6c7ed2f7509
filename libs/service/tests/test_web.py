import asyncio

import httpx
import pytest

from sous_service.internal_client import rebind_hook
from sous_service.internal_context import InternalContext, sign_context
from sous_service.logs import request_id_var
from sous_service.web import Context, create_service_app

pytestmark = pytest.mark.unit

SECRET = "test-secret"


def _app():
    app = create_service_app(
        title="t", description="d", internal_secret=SECRET, context_max_age_s=60, service_name="things"
    )

    @app.get("/api/things/{thing_id}")
    async def thing(thing_id: str, ctx: Context, q: str = "") -> dict[str, str]:
        return {"id": thing_id, "workspace": ctx.workspace_id, "q": q}

    return app


async def _get(path: str, **kw):
    headers = {"X-Sous-Context": sign_context(InternalContext(workspace_id="w", user_id="u"), SECRET)}
    hooks = {"request": [rebind_hook(SECRET, "things")]}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app()), base_url="http://s", event_hooks=hooks
    ) as client:
        return await client.get(path, headers=headers, **kw)


async def test_plain_requests_pass():
    response = await _get("/api/things/a-1", params={"q": "x"})
    assert response.json() == {"id": "a-1", "workspace": "w", "q": "x"}


async def test_control_characters_in_the_path_are_a_422():
    response = await _get("/api/things/a%00b")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path"


async def test_control_characters_in_a_query_value_name_the_parameter():
    response = await _get("/api/things/a", params={"q": "x\x1fy"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "q"


async def test_delete_and_control_characters_in_a_query_name_are_a_422_too():
    response = await _get("/api/things/a", params={"q\x7f": "x"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "q\x7f"
    tab_in_path = await _get("/api/things/a%09b")
    assert (tab_in_path.status_code, tab_in_path.json()["errors"][0]["field"]) == (422, "path")


async def test_requests_without_the_signed_context_are_a_401():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://s") as client:
        response = await client.get("/api/things/a")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_internal_context")


async def test_requests_run_in_the_servers_task_with_their_request_id():
    """No middleware puts a task (and a stream per body chunk) between the server and the endpoint."""
    app = _app()
    seen: dict[str, object] = {}

    @app.get("/api/things-seen")
    async def things_seen(ctx: Context) -> dict[str, str]:
        seen["task"] = asyncio.current_task()
        seen["request_id"] = request_id_var.get()
        return {}

    headers = {"X-Sous-Context": sign_context(InternalContext(workspace_id="w", user_id="u"), SECRET)}
    hooks = {"request": [rebind_hook(SECRET, "things")]}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://s", event_hooks=hooks
    ) as client:
        response = await client.get("/api/things-seen", headers={**headers, "X-Request-ID": "req-1"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-1"
    assert seen == {"task": asyncio.current_task(), "request_id": "req-1"}

"""Routing through the real gateway to real upstream apps: services, context, streaming, limits."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from sous_gateway.routing.table import ROUTES
from sous_local.ports import free_port
from sous_service.config import DEVELOPMENT_INTERNAL_SECRET
from sous_service.internal_context import body_digest, decode_context

pytestmark = pytest.mark.integration

RECIPES = "/api/workflow-recipes"


@pytest.fixture
async def gw(make_gateway):
    return await make_gateway()


@pytest.fixture
def member(mint, workspace, auth):
    return auth(mint(sub="bob", roles=["moderator"]), workspace)


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("GET", f"{RECIPES}?skip=0&limit=5&search=caf%C3%A9", "catalog"),
        ("PUT", f"{RECIPES}/r-1", "catalog"),
        ("GET", f"{RECIPES}/categories/list", "catalog"),
        ("POST", "/api/agents", "catalog"),
        ("POST", f"{RECIPES}/r-1/execute", "executor"),
        ("POST", f"{RECIPES}/r-1/executions/e-1/rerun", "executor"),
        ("GET", "/api/workflows/active", "executor"),
        ("GET", "/api/tools", "executor"),
        ("POST", f"{RECIPES}/r-1/assess-quality", "quality"),
        ("GET", f"{RECIPES}/r-1/quality/history", "quality"),
        ("POST", f"{RECIPES}/submit", "marketplace"),
        ("POST", f"{RECIPES}/install/l-1", "marketplace"),
        ("POST", "/api/marketplace/listings/l-1/approve", "marketplace"),
    ],
)
async def test_requests_reach_the_owning_service_unchanged(gw, member, workspace, method, path, service):
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {**member, "X-Request-ID": "req-abc.123", "traceparent": trace, "Content-Type": "application/json"}
    response = await gw.client.request(method, path, headers=headers, content=b'{"a": 1}')
    assert response.status_code == 200, response.text
    echo = response.json()
    assert echo["service"] == service == response.headers["x-upstream"]
    assert echo["method"] == method
    assert echo["path"] + (f"?{echo['query']}" if echo["query"] else "") == path
    assert echo["body"] == '{"a": 1}'
    assert echo["context"]["workspace_id"] == workspace and echo["context"]["request_id"] == "req-abc.123"
    assert response.headers["x-request-id"] == echo["headers"]["x-request-id"] == "req-abc.123"
    forwarded = echo["headers"]["traceparent"]
    assert forwarded.split("-")[1] == trace.split("-")[1] and forwarded != trace
    bound = decode_context(echo["headers"]["x-sous-context"], DEVELOPMENT_INTERNAL_SECRET).binding
    assert bound is not None and (bound.service, bound.method, bound.target) == (service, method, path)
    assert bound.body_sha256 == body_digest(b'{"a": 1}')


async def test_an_encoded_question_mark_in_an_id_stays_part_of_the_path(gw, member):
    # A decoded "?" must neither split the path when routing nor when forwarding.
    response = await gw.client.post(f"{RECIPES}/a%3Fb/executions/e-1/cancel", headers=member)
    assert response.status_code == 200, response.text
    echo = response.json()
    assert echo["service"] == "executor"
    assert echo["query"] == ""
    assert echo["path"] == f"{RECIPES}/a?b/executions/e-1/cancel"


async def test_a_forged_context_header_is_replaced(gw, member):
    response = await gw.client.get(RECIPES, headers={**member, "X-Sous-Context": "forged.header"})
    assert response.status_code == 200
    assert response.json()["headers"]["x-sous-context"] != "forged.header"
    # no X-Request-ID from the caller: the gateway makes one and hands it to the service
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.json()["context"]["request_id"] == response.headers["x-request-id"]


async def test_services_refuse_requests_without_the_gateway(upstreams):
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{upstreams['catalog'].server.url}{RECIPES}")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_internal_context")


async def assert_streamed_through(response, upstreams) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = response.aiter_bytes()
    first = await asyncio.wait_for(chunks.__anext__(), 5)
    assert b'"n": 1' in first  # arrived while the upstream still holds the second event back
    upstreams["executor"].release.set()
    rest = b"".join([chunk async for chunk in chunks])
    assert b'"n": 2' in rest


async def test_server_sent_events_stream_through_without_buffering(gw, member, upstreams):
    path = f"{RECIPES}/r-1/executions/e-1/events"
    async with gw.client.stream("GET", path, headers=member) as response:
        await assert_streamed_through(response, upstreams)


async def test_an_execute_asking_for_an_event_stream_streams_through_and_a_plain_one_is_answered_whole(
    gw, member, upstreams
):
    path = f"{RECIPES}/r-1/execute"
    streaming = {**member, "Accept": "text/event-stream"}
    async with gw.client.stream("POST", path, json={"input_data": {}}, headers=streaming) as response:
        await assert_streamed_through(response, upstreams)
    plain = await gw.client.post(path, json={"input_data": {}}, headers=member)
    assert plain.status_code == 200 and plain.json()["method"] == "POST"


async def test_webhooks_need_no_caller_credentials_and_pass_the_raw_body(gw):
    raw = b'{"z":1,  "a" :[2]}'
    headers = {"X-Hub-Signature-256": "sha256=deadbeef", "Content-Type": "application/json"}
    response = await gw.client.post("/api/webhooks/recipe/wh-1", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    echo = response.json()
    assert echo["service"] == "executor"
    assert echo["body"].encode() == raw
    assert echo["headers"]["x-hub-signature-256"] == "sha256=deadbeef"
    context = echo["context"]
    assert (context["auth_type"], context["workspace_id"], context["user_id"]) == ("system", "", "webhook")


def _concrete(pattern: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", pattern)


async def test_no_anonymous_access_to_any_api_route(gw):
    for route in ROUTES:
        if route.auth == "webhook":
            continue
        response = await gw.client.request(route.method, _concrete(route.pattern))
        assert response.status_code == 401, (route, response.text)
        assert response.json()["code"] == "missing_credentials"
    response = await gw.client.get("/api/no/such/thing")
    assert response.status_code == 401


async def test_unknown_route_404_and_wrong_method_405(gw, member):
    response = await gw.client.get("/api/no/such/thing", headers=member)
    assert (response.status_code, response.json()["code"]) == (404, "route_not_found")
    response = await gw.client.patch(f"{RECIPES}/r-1", headers=member)
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert set(response.headers["allow"].split(", ")) == {"GET", "PUT", "DELETE"}
    response = await gw.client.put("/api/api-keys", headers=member)
    assert response.status_code == 405


async def test_rate_limit_answers_429_with_retry_after(make_gateway, mint, workspace, auth):
    gw = await make_gateway(rate_limit_per_minute=6, rate_limit_burst=3)
    headers = auth(mint(sub="busy"), workspace)
    statuses = [(await gw.client.get(RECIPES, headers=headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = await gw.client.get(RECIPES, headers=headers)
    assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= 10
    # the limit is per principal: someone else is not affected
    other = auth(mint(sub="calm"), workspace)
    assert (await gw.client.get(RECIPES, headers=other)).status_code == 200


async def test_body_limit_answers_413(make_gateway, member):
    gw = await make_gateway(max_body_bytes=1000)
    response = await gw.client.post(RECIPES, headers=member, content=b"x" * 1001)
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")

    async def chunked():
        for _ in range(4):
            yield b"y" * 400

    response = await gw.client.post(RECIPES, headers=member, content=chunked())
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")

    async def small():
        yield b"z" * 300
        yield b"z" * 300

    response = await gw.client.post(RECIPES, headers=member, content=small())
    assert response.status_code == 200 and response.json()["body"] == "z" * 600


async def test_unreachable_upstream_is_502(make_gateway, member):
    gw = await make_gateway(marketplace_url=f"http://127.0.0.1:{free_port()}")
    response = await gw.client.get("/api/marketplace/listings", headers=member)
    assert (response.status_code, response.json()["code"]) == (502, "upstream_unavailable")
    # The other services stay reachable: one missing upstream is reported, not a reason to leave rotation.
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["dependencies"]["marketplace"] is False
    assert ready.json()["dependencies"]["catalog"] is True


async def test_health_readiness_and_cors(make_gateway):
    gw = await make_gateway(cors_origins=["https://app.example.org"])
    assert (await gw.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"database"}
    assert set(ready.json()["dependencies"]) == {"catalog", "executor", "quality", "marketplace"}
    preflight = await gw.client.options(
        RECIPES,
        headers={
            "Origin": "https://app.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, X-Workspace-ID",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.org"


async def test_merged_openapi_document(gw):
    response = await gw.client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    paths = doc["paths"]
    assert set(paths) == {
        "/api/api-keys",
        "/api/api-keys/{key_id}",
        "/api/workflow-recipes",
        "/api/workflow-recipes/{template_id}",
        "/api/workflow-recipes/{template_id}/execute",
        "/api/webhooks/recipe/{webhook_id}",
        "/api/workflow-recipes/{template_id}/suggestions",
        "/api/marketplace/listings",
    }
    assert "post" not in paths["/api/workflow-recipes"]  # claimed by the executor, routed to the catalog
    assert set(doc["components"]["securitySchemes"]) == {"bearerAuth", "apiKey"}
    assert paths["/api/webhooks/recipe/{webhook_id}"]["post"]["security"] == []
    schemas = doc["components"]["schemas"]
    assert {"Thing", "executor_Thing", "quality_Thing", "marketplace_Thing"} <= set(schemas)
    ref = paths["/api/marketplace/listings"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/marketplace_Thing"
    op_ids = [op["operationId"] for item in paths.values() for op in item.values() if "operationId" in op]
    assert len(op_ids) == len(set(op_ids))
    docs = await gw.client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text

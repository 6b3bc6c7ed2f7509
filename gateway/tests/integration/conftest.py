"""Real parts for gateway tests: PostgreSQL, the gateway over HTTP, echo upstreams, a JWKS server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy.engine import make_url

from sous_gateway.bootstrap import SERVICE, build_app
from sous_gateway.config import GatewaySettings
from sous_local.ports import free_port
from sous_local.testing import Infrastructure, create_database
from sous_service.config import DEVELOPMENT_INTERNAL_SECRET
from sous_service.web import Context, create_service_app

SERVICES = ("catalog", "executor", "quality", "marketplace")


class InLoopServer:
    """A uvicorn server running as a task on the test's event loop."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> InLoopServer:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise TimeoutError("server did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)


# -- echo upstreams -------------------------------------------------------------------------------
@dataclass
class Echo:
    name: str
    server: InLoopServer
    release: asyncio.Event = field(default_factory=asyncio.Event)


def echo_app(name: str, release_holder: dict[str, asyncio.Event]) -> FastAPI:
    """A real service app (sous_service plumbing: it refuses requests without a valid context)."""
    app = create_service_app(
        title=f"echo {name}",
        description="test upstream",
        internal_secret=DEVELOPMENT_INTERNAL_SECRET,
        context_max_age_s=60,
        service_name=name,
    )

    def held_stream() -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            yield b'event: step\ndata: {"n": 1}\n\n'
            await asyncio.wait_for(release_holder["release"].wait(), 10)
            yield b'event: step\ndata: {"n": 2}\n\n'

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.get("/api/workflow-recipes/{rid}/executions/{eid}/events")
    async def events(rid: str, eid: str, ctx: Context) -> StreamingResponse:
        return held_stream()

    @app.post("/api/workflow-recipes/{rid}/execute")
    async def execute(rid: str, request: Request, ctx: Context) -> Response:
        if "text/event-stream" in request.headers.get("accept", ""):
            return held_stream()
        return await echo(request.scope["path"].removeprefix("/api/"), request, ctx)

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(path: str, request: Request, ctx: Context) -> JSONResponse:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items()}
        return JSONResponse(
            {
                "service": name,
                "method": request.method,
                "path": request.scope["path"],
                "query": request.scope["query_string"].decode(),
                "body": body.decode("latin-1"),
                "context": ctx.model_dump(mode="json"),
                "headers": headers,
            },
            headers={"X-Upstream": name},
        )

    document = service_openapi(name)
    app.openapi = lambda: document  # type: ignore[method-assign]
    return app


def service_openapi(name: str) -> dict[str, Any]:
    op = {
        "responses": {
            "200": {
                "description": "ok",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
            }
        }
    }
    paths: dict[str, Any] = {
        "catalog": {
            "/api/workflow-recipes": {"get": {**op, "operationId": "list_recipes"}},
            "/api/workflow-recipes/{template_id}": {"get": {**op, "operationId": "get_recipe"}},
            "/healthz": {"get": op},
        },
        "executor": {
            "/api/workflow-recipes/{template_id}/execute": {
                "post": {
                    **op,
                    "operationId": "execute",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                }
            },
            "/api/webhooks/recipe/{webhook_id}": {"post": {**op, "operationId": "webhook"}},
            # not routed to the executor: must not appear in the merged document
            "/api/workflow-recipes": {"post": {**op, "operationId": "bogus"}},
        },
        "quality": {"/api/workflow-recipes/{template_id}/suggestions": {"get": {**op, "operationId": "list_recipes"}}},
        "marketplace": {"/api/marketplace/listings": {"get": {**op, "operationId": "listings"}}},
    }[name]
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"Thing": {"type": "object", "title": f"Thing of {name}"}, "ErrorBody": {"type": "object"}}
        },
    }


@pytest.fixture
async def upstreams() -> AsyncIterator[dict[str, Echo]]:
    echoes: dict[str, Echo] = {}
    for name in SERVICES:
        holder: dict[str, asyncio.Event] = {"release": asyncio.Event()}
        server = await InLoopServer(echo_app(name, holder)).start()
        echoes[name] = Echo(name, server, holder["release"])
    yield echoes
    for echo in echoes.values():
        echo.release.set()
    await asyncio.gather(*(echo.server.stop() for echo in echoes.values()))


# -- JWKS server ------------------------------------------------------------------------------------
@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return dict(jwk)


@pytest.fixture(scope="session")
def rsa_keys() -> list[Any]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]


@pytest.fixture
def signing_keys(rsa_keys: list[Any]) -> dict[str, SigningKey]:
    return {
        "rsa1": SigningKey(f"rsa1-{uuid.uuid4().hex[:6]}", "RS256", rsa_keys[0]),
        "rsa2": SigningKey(f"rsa2-{uuid.uuid4().hex[:6]}", "RS256", rsa_keys[1]),
        "rogue": SigningKey(f"rogue-{uuid.uuid4().hex[:6]}", "RS256", rsa_keys[2]),
        "ec1": SigningKey(f"ec1-{uuid.uuid4().hex[:6]}", "ES256", ec.generate_private_key(ec.SECP256R1())),
    }


class JwksServer:
    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.hits = 0
        app = FastAPI()

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            self.hits += 1
            return {"keys": [key.public_jwk() for key in self.keys]}

        self.server = InLoopServer(app)

    @property
    def url(self) -> str:
        return f"{self.server.url}/.well-known/jwks.json"


@pytest.fixture
async def jwks_server(signing_keys: dict[str, SigningKey]) -> AsyncIterator[JwksServer]:
    server = JwksServer()
    server.keys = [signing_keys["rsa1"], signing_keys["ec1"]]
    await server.server.start()
    yield server
    await server.server.stop()


# -- the gateway ----------------------------------------------------------------------------------------
@dataclass
class RunningGateway:
    url: str
    app: Any
    settings: GatewaySettings
    client: httpx.AsyncClient

    @property
    def components(self) -> Any:
        return self.app.state.components


GatewayFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def gateway_database(infra: Infrastructure) -> str:
    return await create_database(infra.database_url, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def make_gateway(gateway_database: str, upstreams: dict[str, Echo]) -> AsyncIterator[GatewayFactory]:
    started: list[tuple[InLoopServer, httpx.AsyncClient]] = []
    url = make_url(gateway_database)
    migrated = False

    async def factory(**overrides: Any) -> RunningGateway:
        nonlocal migrated
        values: dict[str, Any] = {
            "env": "test",
            "database_url": url.set(database="postgres").render_as_string(hide_password=False),
            "database_name": url.database,
            "database_pool_size": 2,
            "rate_limit_per_minute": 100_000,
            "rate_limit_burst": 10_000,
            "workspace_rate_limit_per_minute": 100_000,
            "workspace_rate_limit_burst": 10_000,
            "auth_failure_limit_per_minute": 100_000,
            "auth_failure_burst": 10_000,
            "api_key_last_used_interval_s": 0.0,
        }
        values.update({f"{name}_url": echo.server.url for name, echo in upstreams.items()})
        values.update(overrides)
        settings = GatewaySettings(**values)
        if not migrated:
            await SERVICE.migrate_async(settings)
            migrated = True
        app = build_app(settings)
        server = await InLoopServer(app).start()
        client = httpx.AsyncClient(base_url=server.url, timeout=10.0)
        started.append((server, client))
        return RunningGateway(server.url, app, settings, client)

    yield factory
    for _, client in started:
        await client.aclose()
    await asyncio.gather(*(server.stop() for server, _ in started))


# -- tokens ---------------------------------------------------------------------------------------------
Minter = Callable[..., str]


@pytest.fixture
def workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def mint(workspace: str) -> Minter:
    """Sign a token: HS256 with the development secret, or with a SigningKey (its kid in the header)."""
    import time

    import jwt as pyjwt

    from sous_service.config import DEVELOPMENT_JWT_SECRET

    def _mint(
        *,
        sub: str = "user-1",
        workspaces: list[str] | None = None,
        roles: list[str] | None = None,
        key: SigningKey | None = None,
        secret: str = DEVELOPMENT_JWT_SECRET,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": sub,
            "workspaces": workspaces if workspaces is not None else [workspace],
            "roles": roles or [],
            "iss": "sous-dev",
            "aud": "sous-api",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        if key is None:
            return pyjwt.encode(payload, secret, algorithm="HS256", headers=headers)
        return pyjwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})})

    return _mint


def bearer(token: str, workspace: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if workspace:
        headers["X-Workspace-ID"] = workspace
    return headers


@pytest.fixture
def auth() -> Callable[[str, str | None], dict[str, str]]:
    return bearer

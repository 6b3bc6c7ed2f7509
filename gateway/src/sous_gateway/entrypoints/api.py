"""The gateway's HTTP surface: its own routes (API keys, health, OpenAPI) and the routed rest."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from sous_gateway.auth.principal import Principal
from sous_gateway.compat import exchange as compat
from sous_gateway.components import Components
from sous_gateway.console import install_console
from sous_gateway.entrypoints.middleware import GatewayMiddleware
from sous_gateway.entrypoints.schemas import ApiKeyList, ApiKeyView, CreateApiKey, CreatedApiKey
from sous_gateway.limits import too_many
from sous_gateway.routing.proxy import StreamPolicy
from sous_gateway.routing.table import Match, Route
from sous_gateway.scopes import KEYS_ADMIN
from sous_service.errors import ApiError, install_error_handlers, responses
from sous_service.internal_context import InternalContext
from sous_service.observability.http import ObservabilityMiddleware
from sous_service.web import ReadinessCheck, accepts_event_stream, health_router

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def _authenticate(request: Request, components: Components) -> Principal:
    address = components.addresses.resolve(request.scope)
    # Refused before any check once an address has failed too often: guessing costs the guesser time,
    # and a flood of bad credentials cannot keep the key table or the identity provider busy.
    wait = components.auth_failures.exhausted(f"auth:{address}")
    if wait is not None:
        raise too_many(wait, "too many failed authentication attempts; retry later", "too_many_auth_failures")
    try:
        principal = await components.authenticator.authenticate(request.headers)
    except ApiError as exc:
        if exc.status_code == 401:
            components.auth_failures.acquire(f"auth:{address}")
        raise
    request.scope.setdefault("state", {})["principal_id"] = principal.user_id
    components.limiter.check(principal.user_id)
    return principal


def _enter_workspace(request: Request, components: Components, principal: Principal) -> tuple[Principal, str]:
    """The workspace of this request, the caller's roles and scopes there, and the workspace's own limit."""
    workspace_id = principal.select_workspace(request.headers.get("x-workspace-id"))
    components.workspace_limiter.check(f"ws:{workspace_id}", "this workspace is sending too many requests")
    return principal.acting_in(workspace_id), workspace_id


def _require_scope(principal: Principal, scope: str | None) -> None:
    if scope and not principal.has_scope(scope):
        raise ApiError(403, "missing_scope", f"this operation needs the '{scope}' scope")


class KeyAdmin:
    def __init__(self, principal: Principal, workspace_id: str) -> None:
        self.principal = principal
        self.workspace_id = workspace_id


async def _key_admin(request: Request) -> KeyAdmin:
    components = _components(request)
    principal, workspace_id = _enter_workspace(request, components, await _authenticate(request, components))
    _require_scope(principal, KEYS_ADMIN)
    return KeyAdmin(principal, workspace_id)


Admin = Annotated[KeyAdmin, Depends(_key_admin)]


def api_keys_router() -> APIRouter:
    router = APIRouter(prefix="/api/api-keys", tags=["api-keys"])

    @router.post(
        "",
        status_code=201,
        response_model=CreatedApiKey,
        summary="Create an API key",
        description=(
            "Creates a key bound to the caller's workspace (X-Workspace-ID) with the given scopes. The full key "
            "is returned once, here; only its hash is stored. Needs role admin or scope keys:admin; a key "
            "cannot grant scopes its creator lacks."
        ),
        responses=responses(429),
    )
    async def create_key(body: CreateApiKey, admin: Admin, request: Request) -> JSONResponse:
        record, key = await _components(request).api_keys.create(
            workspace_id=admin.workspace_id,
            name=body.name,
            scopes=body.scopes,
            expires_in_days=body.expires_in_days,
            created_by=admin.principal.user_id,
            creator_scopes=admin.principal.scopes,
            parent_key_id=admin.principal.key_id,
        )
        created = CreatedApiKey(**ApiKeyView.of(record).model_dump(), key=key)
        return JSONResponse(
            status_code=201, content=created.model_dump(mode="json"), headers={"Cache-Control": "no-store"}
        )

    @router.get(
        "",
        response_model=ApiKeyList,
        summary="List API keys",
        description="The workspace's keys, newest first, with last use; secrets are never returned.",
        responses=responses(429),
    )
    async def list_keys(admin: Admin, request: Request) -> ApiKeyList:
        records = await _components(request).api_keys.list(admin.workspace_id)
        return ApiKeyList(items=[ApiKeyView.of(r) for r in records], total=len(records))

    @router.delete(
        "/{key_id}",
        response_model=ApiKeyView,
        summary="Revoke an API key",
        description="Revocation takes effect at once for every later request. Idempotent.",
        responses=responses(429),
    )
    async def revoke_key(key_id: str, admin: Admin, request: Request) -> ApiKeyView:
        return ApiKeyView.of(await _components(request).api_keys.revoke(admin.workspace_id, key_id))

    return router


def _method_not_allowed(allowed: tuple[str, ...]) -> ApiError:
    error = ApiError(405, "method_not_allowed", f"method not allowed; allowed: {', '.join(allowed)}")
    error.headers["Allow"] = ", ".join(allowed)
    return error


async def _route(request: Request) -> Response:
    """Every other /api path: authenticate, authorize, limit, then forward to the owning service."""
    components = _components(request)
    resolved = components.table.resolve(request.method, request.scope["path"])
    request_id = _request_id(request)
    if isinstance(resolved, Match) and resolved.route.auth == "webhook":
        return await _forward_webhook(request, components, resolved.route, request_id)
    principal = await _authenticate(request, components)
    alias = compat.rewrite_request_path(request)  # the origin client's paths (docs/compatibility.md)
    if alias is not None:
        resolved = components.table.resolve(request.method, request.scope["path"])
    if not isinstance(resolved, Match):
        if resolved.allowed:
            raise _method_not_allowed(resolved.allowed)
        raise ApiError(404, "route_not_found", f"no route for {request.scope['path']}")
    route = resolved.route
    request.scope.setdefault("state", {})["route"] = route.pattern  # the template, for metrics and logs
    if route.service == "gateway":
        raise _method_not_allowed(tuple(r.method for r in components.table.routes if r.pattern == route.pattern))
    principal, workspace_id = _enter_workspace(request, components, principal)
    _require_scope(principal, route.scope)
    context = InternalContext(
        workspace_id=workspace_id,
        user_id=principal.user_id,
        roles=principal.roles,
        scopes=principal.scopes,
        auth_type=principal.auth_type,
        request_id=request_id,
    )
    body = compat.adapt_body(request.method, route.pattern, await request.body())
    trusted = components.addresses.peer_is_trusted(request.scope)
    if not (route.stream or (route.stream_when_asked and accepts_event_stream(request))):
        response = await components.proxy.forward(
            request, route.service, body, context, request_id, trusted_peer=trusted
        )
        view = compat.view_for(alias, request.method, route.pattern, request.scope["path"])
        return response if view is None else await compat.reshaped(response, view)
    slot = components.streams.admit(principal.user_id, workspace_id)
    policy = StreamPolicy(components.stream_client, components.settings.stream_max_lifetime_s, slot.release)
    try:
        return await components.proxy.forward(
            request, route.service, body, context, request_id, trusted_peer=trusted, stream=policy
        )
    except BaseException:
        slot.release()
        raise


async def _forward_webhook(request: Request, components: Components, route: Route, request_id: str) -> Response:
    """Third parties call webhooks without Sous credentials; the executor checks their HMAC signature."""
    components.limiter.check(f"webhook:{components.addresses.resolve(request.scope)}")
    context = InternalContext(workspace_id="", user_id="webhook", auth_type="system", request_id=request_id)
    body = await request.body()
    trusted = components.addresses.peer_is_trusted(request.scope)
    return await components.proxy.forward(request, route.service, body, context, request_id, trusted_peer=trusted)


def create_app(components: Components, lifespan: Any = None) -> FastAPI:
    settings = components.settings
    app = FastAPI(
        title="Sous API",
        description="The public API of Sous, served by the gateway.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.components = components
    components.openapi.gateway_doc = app.openapi
    install_error_handlers(app)

    async def database_ready() -> bool:
        from sous_service.db import database_is_ready

        return await database_is_ready(components.engine)

    def upstream_ready(base: str) -> ReadinessCheck:
        async def check() -> bool:
            try:
                response = await components.control_client.get(f"{base}/readyz", timeout=2.0)
            except Exception:
                return False
            return response.status_code == 200

        return check

    # One service down must not take the gateway (and so every other service) out of rotation: upstreams
    # are reported, not gating; the gateway answers 502 for the routes of a missing one.
    upstreams = {name: upstream_ready(base) for name, base in settings.upstreams.items()}
    app.include_router(health_router({"database": database_ready}, informational=upstreams))
    app.include_router(api_keys_router())

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(await components.openapi.document())

    install_console(app, _authenticate)  # /console (public static files), /docs, /redoc (local assets), /api/session

    app.router.routes.append(StarletteRoute("/api/{path:path}", _route, methods=_ALL_METHODS))

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "X-Workspace-ID",
                "Content-Type",
                "X-Request-ID",
                "traceparent",
                "Idempotency-Key",
            ],
            expose_headers=["X-Request-ID", "Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(GatewayMiddleware, max_body_bytes=settings.max_body_bytes)
    # Outermost: the SERVER span every forwarded request continues, and the request metrics (the access
    # line is GatewayMiddleware's). /metrics is not served here: the gateway's metrics port is separate.
    app.add_middleware(ObservabilityMiddleware, service="gateway", access_log=False)
    return app

"""Composition root: the gateway's ServiceDefinition, and the gateway built from its settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from sous_gateway.adapters.key_repository import KeyRepository
from sous_gateway.admin import COMMANDS
from sous_gateway.auth.api_keys import ApiKeyService, derive_pepper
from sous_gateway.auth.authenticator import Authenticator
from sous_gateway.auth.claims import ClaimMapping
from sous_gateway.auth.jwks import JwksCache
from sous_gateway.auth.jwt import JwtVerifier
from sous_gateway.client_address import ClientAddresses
from sous_gateway.components import Components
from sous_gateway.config import GatewaySettings
from sous_gateway.entrypoints.api import create_app
from sous_gateway.limits import TokenBucketLimiter
from sous_gateway.routing.openapi_merge import OpenApiMerger
from sous_gateway.routing.proxy import UpstreamProxy
from sous_gateway.routing.table import default_table
from sous_gateway.streams import StreamCaps, StreamLedger
from sous_service.db import create_engine
from sous_service.definition import ServiceDefinition
from sous_service.observability.metrics import ServiceMetrics
from sous_service.observability.service import start_metrics_server


def build_components(settings: GatewaySettings) -> Components:
    engine = create_engine(settings)
    upstream_client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.upstream_timeout_s, connect=settings.upstream_connect_timeout_s),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
            keepalive_expiry=30.0,
        ),
        follow_redirects=False,
        trust_env=False,
    )
    # Streams hold a connection each for minutes: a pool of their own, bounded like the ledger's total, so
    # however many are open, ordinary requests keep theirs. Silence past the idle timeout ends a stream.
    stream_client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.stream_idle_timeout_s,
            connect=settings.upstream_connect_timeout_s,
            pool=settings.upstream_connect_timeout_s,
        ),
        limits=httpx.Limits(
            max_connections=settings.stream_max_connections,
            max_keepalive_connections=min(20, settings.stream_max_connections),
            keepalive_expiry=30.0,
        ),
        follow_redirects=False,
        trust_env=False,
    )
    control_client = httpx.AsyncClient(timeout=httpx.Timeout(settings.jwks_timeout_s), trust_env=False)
    jwks = (
        JwksCache(
            settings.jwt_jwks_url,
            control_client,
            ttl_s=settings.jwks_cache_ttl_s,
            min_refresh_interval_s=settings.jwks_min_refresh_interval_s,
        )
        if settings.jwt_jwks_url
        else None
    )
    verifier = JwtVerifier(
        algorithms=settings.jwt_algorithms,
        secret=settings.jwt_secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_s=settings.jwt_leeway_s,
        jwks=jwks,
        mapping=ClaimMapping(settings.jwt_workspaces_claim, settings.jwt_roles_claim, settings.jwt_role_map),
        authorized_parties=tuple(settings.jwt_authorized_parties),
    )
    api_keys = ApiKeyService(
        KeyRepository(engine),
        derive_pepper(settings.api_key_pepper, settings.internal_secret),
        settings.api_key_last_used_interval_s,
        settings.api_key_max_per_workspace,
    )
    table = default_table()
    return Components(
        settings=settings,
        engine=engine,
        upstream_client=upstream_client,
        control_client=control_client,
        table=table,
        authenticator=Authenticator(verifier, api_keys),
        api_keys=api_keys,
        limiter=TokenBucketLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        workspace_limiter=TokenBucketLimiter(
            settings.workspace_rate_limit_per_minute, settings.workspace_rate_limit_burst
        ),
        auth_failures=TokenBucketLimiter(settings.auth_failure_limit_per_minute, settings.auth_failure_burst),
        addresses=ClientAddresses(settings.trusted_proxies),
        stream_client=stream_client,
        streams=StreamLedger(
            StreamCaps(
                per_caller=settings.stream_max_per_caller,
                per_workspace=settings.stream_max_per_workspace,
                total=settings.stream_max_connections,
                retry_after_s=settings.stream_retry_after_s,
            )
        ),
        proxy=UpstreamProxy(settings.upstreams, upstream_client, settings.internal_secret),
        openapi=OpenApiMerger(settings.upstreams, control_client, table, settings.openapi_cache_ttl_s),
    )


def build_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    components = build_components(settings)

    metrics = ServiceMetrics("gateway")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Metrics on their own port (SOUS_METRICS_PORT): never on the public API port.
        server = await start_metrics_server(metrics, settings.metrics_host or settings.host, settings.metrics_port)
        try:
            yield
        finally:
            if server is not None:
                await server.stop()
            await components.api_keys.drain()
            await components.upstream_client.aclose()
            await components.stream_client.aclose()
            await components.control_client.aclose()
            await components.engine.dispose()

    return create_app(components, lifespan=lifespan)


SERVICE = ServiceDefinition(
    name="gateway",
    package="sous_gateway",
    settings=GatewaySettings,
    app=build_app,
    # The gateway keeps no event store: nothing to replay or rebuild.
    event_store=False,
    commands=COMMANDS,
    # The gateway is the public edge: it reads client addresses itself (trusted_proxies) and names no server.
    server_options={"access_log": False, "proxy_headers": False, "server_header": False},
)

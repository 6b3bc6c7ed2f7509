"""What the entry points need, wired once by the composition root (bootstrap.py)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_gateway.auth.api_keys import ApiKeyService
from sous_gateway.auth.authenticator import Authenticator
from sous_gateway.client_address import ClientAddresses
from sous_gateway.config import GatewaySettings
from sous_gateway.limits import TokenBucketLimiter
from sous_gateway.routing.openapi_merge import OpenApiMerger
from sous_gateway.routing.proxy import UpstreamProxy
from sous_gateway.routing.table import RouteTable
from sous_gateway.streams import StreamLedger


@dataclass
class Components:
    settings: GatewaySettings
    engine: AsyncEngine
    upstream_client: httpx.AsyncClient
    control_client: httpx.AsyncClient
    table: RouteTable
    authenticator: Authenticator
    api_keys: ApiKeyService
    limiter: TokenBucketLimiter
    workspace_limiter: TokenBucketLimiter
    auth_failures: TokenBucketLimiter
    addresses: ClientAddresses
    stream_client: httpx.AsyncClient
    streams: StreamLedger
    proxy: UpstreamProxy
    openapi: OpenApiMerger

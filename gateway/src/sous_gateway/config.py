"""Gateway settings: read once at start-up from `SOUS_*` variables."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from sous_gateway.auth.claims import parse_role_map
from sous_service.config import DEVELOPMENT_JWT_SECRET, ServiceSettings

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
SUPPORTED_ALGORITHMS = HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS


def _split_list(value: object) -> object:
    """Accept a JSON list, or a comma/space separated string, from the environment."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part for part in text.replace(",", " ").split() if part]
    return value


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SOUS_", extra="ignore", populate_by_name=True)

    service_name: str = "gateway"
    database_name: str = "sous_gateway"
    port: int = Field(default=8000, validation_alias=AliasChoices("SOUS_GATEWAY_PORT", "port"))

    # JWT (docs/security.md): HS256 with a shared secret in development, RS256/ES256 from a JWKS URL in production.
    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    jwt_algorithms: Annotated[list[str], NoDecode] = ["HS256"]
    jwt_jwks_url: str = ""
    jwt_issuer: str = "sous-dev"
    # Empty: tokens need no `aud` (providers such as Clerk issue none); then set jwt_authorized_parties.
    jwt_audience: str = "sous-api"
    # When set, a token's `azp` (the client it was issued to) must be one of these.
    jwt_authorized_parties: Annotated[list[str], NoDecode] = []
    # Claim names as given, or dotted paths into nested claims (`realm_access.roles`).
    jwt_workspaces_claim: str = "workspaces"
    jwt_roles_claim: str = "roles"
    # Provider role -> Sous role, `org:admin=admin,org:member=member`; unnamed roles are kept as they are.
    jwt_role_map: Annotated[dict[str, str], NoDecode] = {}
    jwt_leeway_s: int = 30
    jwks_cache_ttl_s: float = 600.0
    # An unknown kid triggers a JWKS refresh at most this often: forged kids cannot hammer the IdP.
    jwks_min_refresh_interval_s: float = 30.0
    jwks_timeout_s: float = 5.0

    # API keys: secrets are hashed with HMAC-SHA256 under this pepper (derived from the internal secret if empty).
    api_key_pepper: str = ""
    api_key_last_used_interval_s: float = 60.0

    api_key_max_per_workspace: int = Field(default=100, ge=1)

    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 100
    # A workspace's callers together (every key and user of it): one tenant cannot get around its limit
    # by minting more keys.
    workspace_rate_limit_per_minute: int = 3000
    workspace_rate_limit_burst: int = 500
    # Failed authentications per client address; past the burst, attempts are refused before any check.
    auth_failure_limit_per_minute: int = 30
    auth_failure_burst: int = 20
    # Addresses (or CIDR ranges) of the ingress/load balancers in front of the gateway: only their
    # X-Forwarded-For is believed when telling clients apart.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    max_body_bytes: int = 1024 * 1024
    cors_origins: Annotated[list[str], NoDecode] = []

    upstream_timeout_s: float = 60.0
    upstream_connect_timeout_s: float = 5.0
    upstream_max_connections: int = 200
    # Live-event streams get their own connection pool, so they can never starve ordinary requests.
    stream_max_connections: int = Field(default=200, ge=1)
    stream_max_per_caller: int = Field(default=10, ge=1)
    stream_max_per_workspace: int = Field(default=40, ge=1)
    stream_max_lifetime_s: float = Field(default=3600.0, gt=0)
    # The executor sends a keep-alive every 15 s; silence for this long means the upstream is gone.
    stream_idle_timeout_s: float = Field(default=60.0, gt=0)
    stream_retry_after_s: int = Field(default=5, ge=1)
    openapi_cache_ttl_s: float = 60.0

    catalog_url: str = "http://127.0.0.1:8001"
    executor_url: str = "http://127.0.0.1:8002"
    quality_url: str = "http://127.0.0.1:8003"
    marketplace_url: str = "http://127.0.0.1:8004"

    @field_validator("jwt_algorithms", "cors_origins", "trusted_proxies", "jwt_authorized_parties", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("jwt_role_map", mode="before")
    @classmethod
    def _role_map(cls, value: object) -> dict[str, str]:
        return parse_role_map(value)

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one JWT algorithm is required")
        unknown = [alg for alg in value if alg not in SUPPORTED_ALGORITHMS]
        if unknown:
            raise ValueError(f"unsupported JWT algorithms {unknown}; choose from {sorted(SUPPORTED_ALGORITHMS)}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted proxy '{entry}' is not an IP address or CIDR range") from exc
        return value

    @model_validator(mode="after")
    def _production_rules(self) -> GatewaySettings:
        uses_hmac = any(alg in HMAC_ALGORITHMS for alg in self.jwt_algorithms)
        uses_jwks = any(alg in ASYMMETRIC_ALGORITHMS for alg in self.jwt_algorithms)
        if uses_jwks and not self.jwt_jwks_url:
            raise ValueError("SOUS_JWT_JWKS_URL is required for RS*/PS*/ES* algorithms")
        if self.env == "production" and not self.jwt_audience and not self.jwt_authorized_parties:
            raise ValueError("without SOUS_JWT_AUDIENCE, SOUS_JWT_AUTHORIZED_PARTIES must name the trusted clients")
        if self.env == "production" and uses_hmac:
            if self.jwt_secret == DEVELOPMENT_JWT_SECRET:
                raise ValueError("SOUS_JWT_SECRET must be set to a non-default value in production")
            if len(self.jwt_secret) < 32:
                raise ValueError("SOUS_JWT_SECRET must be at least 32 characters in production")
        return self

    @property
    def upstreams(self) -> dict[str, str]:
        return {
            "catalog": self.catalog_url.rstrip("/"),
            "executor": self.executor_url.rstrip("/"),
            "quality": self.quality_url.rstrip("/"),
            "marketplace": self.marketplace_url.rstrip("/"),
        }

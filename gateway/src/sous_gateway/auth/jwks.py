"""JSON Web Key Sets from an identity provider: cached, refreshed on an unknown kid, rate-limited."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from sous_gateway.auth.principal import unauthenticated
from sous_service.errors import ApiError

logger = logging.getLogger("sous.gateway.jwks")

# Which key types and curves each asymmetric algorithm may use: a key is never used with another family.
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    kty: str
    crv: str | None
    alg: str | None
    key: Any  # a cryptography public key object

    def usable_with(self, algorithm: str) -> bool:
        expected = _KEY_TYPES.get(algorithm)
        if expected is None or (self.alg is not None and self.alg != algorithm):
            return False
        kty, crv = expected
        return self.kty == kty and (crv is None or self.crv == crv)


def parse_jwks(document: Any) -> dict[str, VerificationKey]:
    keys: dict[str, VerificationKey] = {}
    entries = document.get("keys", []) if isinstance(document, dict) else []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not entry.get("kid"):
            continue
        kty = entry.get("kty")
        if kty not in ("RSA", "EC"):
            continue  # symmetric ("oct") keys are never accepted from a JWKS
        try:
            jwk = PyJWK(entry)
        except (PyJWTError, ValueError, TypeError) as exc:
            logger.warning("skipping unusable JWK %s: %s", entry.get("kid"), exc)
            continue
        keys[str(entry["kid"])] = VerificationKey(
            kid=str(entry["kid"]), kty=kty, crv=entry.get("crv"), alg=entry.get("alg"), key=jwk.key
        )
    return keys


class JwksCache:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl_s: float,
        min_refresh_interval_s: float,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl_s = ttl_s
        self._min_interval_s = min_refresh_interval_s
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at = 0.0  # last successful fetch
        self._attempted_at = float("-inf")  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def get(self, kid: str, algorithm: str) -> VerificationKey:
        now = time.monotonic()
        if not self._keys or now - self._fetched_at > self._ttl_s or kid not in self._keys:
            await self._refresh(kid)
        key = self._keys.get(kid)
        if key is None:
            raise unauthenticated("unknown_key_id", "the token's signing key (kid) is not known")
        if not key.usable_with(algorithm):
            raise unauthenticated("algorithm_not_allowed", f"key '{kid}' cannot verify {algorithm} tokens")
        return key

    async def _refresh(self, kid: str) -> None:
        async with self._lock:
            now = time.monotonic()
            stale = not self._keys or now - self._fetched_at > self._ttl_s
            if not stale and kid in self._keys:
                return  # another request refreshed while we waited
            if now - self._attempted_at < self._min_interval_s:
                if not self._keys:
                    raise ApiError(503, "identity_provider_unavailable", "signing keys are not available yet")
                return  # rate-limited: answer from the cache
            self._attempted_at = now
            self.fetch_count += 1
            try:
                response = await self._client.get(self.url, headers={"Accept": "application/json"})
                response.raise_for_status()
                keys = parse_jwks(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                logger.warning("JWKS refresh from %s failed: %s", self.url, exc)
                if not self._keys:
                    raise ApiError(503, "identity_provider_unavailable", "signing keys could not be fetched") from exc
                return
            self._keys = keys
            self._fetched_at = now
            logger.info("JWKS refreshed: %d keys", len(keys))

"""Turning request credentials into a Principal: a Bearer JWT or an API key, never anonymous."""

from __future__ import annotations

from starlette.datastructures import Headers

from sous_gateway.auth.api_keys import ApiKeyService
from sous_gateway.auth.jwt import JwtVerifier
from sous_gateway.auth.principal import Principal, unauthenticated


class Authenticator:
    def __init__(self, jwt: JwtVerifier, keys: ApiKeyService) -> None:
        self._jwt = jwt
        self._keys = keys

    async def authenticate(self, headers: Headers) -> Principal:
        api_key = headers.get("x-api-key")
        authorization = headers.get("authorization")
        if api_key and authorization:
            raise unauthenticated("ambiguous_credentials", "send either Authorization or X-API-Key, not both")
        if api_key:
            return await self._keys.authenticate(api_key)
        if not authorization:
            raise unauthenticated("missing_credentials", "authenticate with a Bearer token or an API key")
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if not credential:
            raise unauthenticated("missing_credentials", "the Authorization header carries no credential")
        if scheme.lower() == "bearer":
            return await self._jwt.authenticate(credential)
        if scheme.lower() == "apikey":
            return await self._keys.authenticate(credential)
        raise unauthenticated("unsupported_auth_scheme", "use 'Authorization: Bearer <JWT>' or 'ApiKey <key>'")

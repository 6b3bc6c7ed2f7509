"""Bearer JWT verification: algorithms pinned by configuration, iss/aud/exp/nbf checked, no `none`.

The verification key is chosen from the token's algorithm *family*, never from its content: HS*
tokens are checked against the configured secret, RS*/PS*/ES* tokens only against an asymmetric key
from the JWKS whose type matches the algorithm. A token signed with HMAC over a public key
(algorithm confusion) therefore never verifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from sous_gateway.auth.claims import ClaimMapping, strings
from sous_gateway.auth.jwks import JwksCache
from sous_gateway.auth.principal import Principal, unauthenticated
from sous_gateway.config import HMAC_ALGORITHMS
from sous_gateway.scopes import scopes_for_user

_REQUIRED_CLAIMS = ["exp", "sub", "iss"]


class JwtVerifier:
    def __init__(
        self,
        *,
        algorithms: list[str],
        secret: str,
        issuer: str,
        audience: str,
        leeway_s: int,
        jwks: JwksCache | None,
        mapping: ClaimMapping | None = None,
        authorized_parties: tuple[str, ...] = (),
    ) -> None:
        self.algorithms = frozenset(algorithms)
        self._secret = secret
        self._issuer = issuer
        # Empty: the operator's provider issues no `aud` (Clerk session tokens); then `azp` is checked instead.
        self._audience = audience
        self._leeway_s = leeway_s
        self._mapping = mapping or ClaimMapping()
        self._authorized_parties = authorized_parties
        self._jwks = jwks

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise unauthenticated("invalid_token", "the bearer token is not a well-formed JWT") from exc
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise unauthenticated("algorithm_not_allowed", f"tokens signed with '{algorithm}' are not accepted")
        key: Any
        if algorithm in HMAC_ALGORITHMS:
            key = self._secret
        else:
            kid = header.get("kid")
            if self._jwks is None:
                raise unauthenticated("algorithm_not_allowed", "no key set is configured for this algorithm")
            if not isinstance(kid, str) or not kid:
                raise unauthenticated("unknown_key_id", "the token names no signing key (kid)")
            key = (await self._jwks.get(kid, algorithm)).key
        return self._decode(token, key, algorithm)

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience or None,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={
                    "require": [*_REQUIRED_CLAIMS, "aud"] if self._audience else _REQUIRED_CLAIMS,
                    "verify_aud": bool(self._audience),
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthenticated("token_expired", "the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise unauthenticated("token_not_yet_valid", "the token is not valid yet") from exc
        except jwt.InvalidIssuerError as exc:
            raise unauthenticated("invalid_issuer", "the token was issued by an untrusted issuer") from exc
        except jwt.InvalidAudienceError as exc:
            raise unauthenticated("invalid_audience", "the token is not meant for this API") from exc
        except jwt.InvalidSignatureError as exc:
            raise unauthenticated("invalid_signature", "the token signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise unauthenticated("missing_claim", f"the token lacks the '{exc.claim}' claim") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise unauthenticated("algorithm_not_allowed", "the token's algorithm is not accepted") from exc
        except jwt.InvalidKeyError as exc:
            raise unauthenticated("invalid_signature", "the token cannot be verified with a trusted key") from exc
        except jwt.PyJWTError as exc:
            raise unauthenticated("invalid_token", "the bearer token is invalid") from exc
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise unauthenticated("missing_claim", "the token's 'sub' claim must be a non-empty string")
        if self._authorized_parties and claims.get("azp") not in self._authorized_parties:
            raise unauthenticated(
                "invalid_authorized_party", "the token was issued to a client this API does not trust"
            )
        return claims

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        workspaces = self._mapping.workspaces(claims)
        claimed: tuple[str, ...] | None = None
        for name in ("scope", "scp"):
            if name in claims:
                claimed = strings(claims[name])
                break
        raw_roles = self._mapping.raw_roles(claims)
        if isinstance(raw_roles, Mapping):
            # Roles per workspace: scopes are computed once the request's workspace is chosen.
            per_workspace = {str(ws): self._mapping.roles(raw_roles[ws]) for ws in raw_roles if str(ws) in workspaces}
            return Principal(
                user_id=str(claims["sub"]),
                auth_type="jwt",
                workspaces=workspaces,
                roles=(),
                scopes=scopes_for_user((), claimed),
                workspace_roles=per_workspace,
                claimed_scopes=claimed,
            )
        roles = self._mapping.roles(raw_roles)
        if roles and len(workspaces) > 1:
            # A flat list would make the caller admin (say) of every workspace it merely belongs to.
            raise unauthenticated(
                "ambiguous_roles",
                'a token for several workspaces must give roles per workspace: {"roles": {"<workspace>": ["admin"]}}',
            )
        return Principal(
            user_id=str(claims["sub"]),
            auth_type="jwt",
            workspaces=workspaces,
            roles=roles,
            scopes=scopes_for_user(roles, claimed),
        )

    async def authenticate(self, token: str) -> Principal:
        return self.principal(await self.verify(token))

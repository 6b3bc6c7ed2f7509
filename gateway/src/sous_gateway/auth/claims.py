"""How an identity provider's token claims become Sous workspaces and roles (docs/security.md).

Claim names are looked up as given first (Auth0's namespaced claims are URLs containing dots), then as a
dotted path into nested objects (Keycloak's `realm_access.roles`). Provider roles are translated through
the role map (Clerk's `org:admin` -> `admin`); roles the map does not name are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def claim(claims: Mapping[str, Any], name: str) -> Any:
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value if isinstance(item, str | int) and str(item))
    return ()


def parse_role_map(value: object) -> dict[str, str]:
    """`org:admin=admin,org:member=member` (or a mapping) -> {provider role: Sous role}."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise ValueError("the role map is 'provider_role=sous_role' pairs separated by commas")
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        provider, sep, sous = item.partition("=")
        if not sep or not provider.strip() or not sous.strip():
            raise ValueError(f"role map entry {item!r} is not 'provider_role=sous_role'")
        pairs[provider.strip()] = sous.strip()
    return pairs


@dataclass(frozen=True)
class ClaimMapping:
    workspaces_claim: str = "workspaces"
    roles_claim: str = "roles"
    role_map: Mapping[str, str] = field(default_factory=dict)

    def workspaces(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        return strings(claim(claims, self.workspaces_claim))

    def raw_roles(self, claims: Mapping[str, Any]) -> Any:
        return claim(claims, self.roles_claim)

    def roles(self, value: Any) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.role_map.get(role, role) for role in strings(value)))

"""The scopes that guard the public API, and what a caller gets by default."""

from __future__ import annotations

RECIPES_READ = "recipes:read"
RECIPES_WRITE = "recipes:write"
EXECUTIONS_RUN = "executions:run"
EXECUTIONS_READ = "executions:read"
QUALITY_WRITE = "quality:write"
MARKETPLACE_SUBMIT = "marketplace:submit"
MARKETPLACE_MODERATE = "marketplace:moderate"
KEYS_ADMIN = "keys:admin"
SECRETS_ADMIN = "secrets:admin"

ALL_SCOPES: tuple[str, ...] = (
    RECIPES_READ,
    RECIPES_WRITE,
    EXECUTIONS_RUN,
    EXECUTIONS_READ,
    QUALITY_WRITE,
    MARKETPLACE_SUBMIT,
    MARKETPLACE_MODERATE,
    KEYS_ADMIN,
    SECRETS_ADMIN,
)

# Every workspace member may do these; the others come with a role.
MEMBER_SCOPES: tuple[str, ...] = tuple(
    s for s in ALL_SCOPES if s not in (KEYS_ADMIN, SECRETS_ADMIN, MARKETPLACE_MODERATE)
)

ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "admin": (KEYS_ADMIN, SECRETS_ADMIN),
    "moderator": (MARKETPLACE_MODERATE,),
}


def scopes_for_user(roles: tuple[str, ...], claimed: tuple[str, ...] | None) -> tuple[str, ...]:
    """Member scopes plus those implied by roles; a `scope`/`scp` claim, when present, narrows them."""
    granted = set(MEMBER_SCOPES)
    for role in roles:
        granted.update(ROLE_SCOPES.get(role, ()))
    if claimed is not None:
        granted &= set(claimed)
    return tuple(s for s in ALL_SCOPES if s in granted)

"""Who is calling, as established by a JWT or an API key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from sous_gateway.scopes import scopes_for_user
from sous_service.errors import ApiError


@dataclass(frozen=True)
class Principal:
    user_id: str
    auth_type: Literal["jwt", "api_key"]
    workspaces: tuple[str, ...]
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    # An API key is bound to one workspace; a JWT lists the workspaces its user belongs to.
    key_id: str | None = None
    # JWT roles per workspace (`"roles": {"w1": ["admin"]}`): `roles`/`scopes` hold only what applies in
    # every workspace until `acting_in` has chosen one.
    workspace_roles: Mapping[str, tuple[str, ...]] | None = None
    claimed_scopes: tuple[str, ...] | None = None

    def acting_in(self, workspace_id: str) -> Principal:
        """The caller as it acts in one of its workspaces: that workspace's roles and the scopes they give."""
        if self.workspace_roles is None:
            return self
        roles = self.workspace_roles.get(workspace_id, ())
        return replace(self, roles=roles, scopes=scopes_for_user(roles, self.claimed_scopes), workspace_roles=None)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def select_workspace(self, requested: str | None) -> str:
        """The workspace this request acts in: `X-Workspace-ID`, which must be one of the caller's."""
        if requested:
            if requested in self.workspaces:
                return requested
            raise ApiError(403, "workspace_forbidden", "the caller is not a member of the requested workspace")
        if len(self.workspaces) == 1:
            return self.workspaces[0]
        if not self.workspaces:
            raise ApiError(403, "workspace_forbidden", "the caller belongs to no workspace")
        raise ApiError(400, "workspace_required", "send X-Workspace-ID to choose one of your workspaces")


def unauthenticated(code: str, detail: str) -> ApiError:
    error = ApiError(401, code, detail)
    error.headers["WWW-Authenticate"] = 'Bearer realm="sous", ApiKey realm="sous"'
    return error

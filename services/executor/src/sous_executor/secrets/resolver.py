"""Credentials by reference: a workspace secret by name, or an environment variable granted to the workspace.

Every way a reference can fail (no such secret, a variable not granted, a granted variable that is unset,
an undecryptable row) raises the same CredentialUnavailable, so a step error never tells a workspace
whether a secret or an executor variable exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sous_executor.secrets.store import SecretStore


class CredentialUnavailable(Exception):
    def __init__(self, what: str = "credential") -> None:
        super().__init__(
            f"the {what} this configuration references is not available in this workspace "
            "(bind a workspace secret, or ask the operator to grant the variable)"
        )


class Credentials:
    def __init__(
        self,
        store: SecretStore,
        grants: Mapping[str, list[str]],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.grants = {ws: frozenset(names) for ws, names in grants.items()}
        self.environ = os.environ if environ is None else environ

    def env_granted(self, workspace_id: str, name: str) -> bool:
        return name in self.grants.get(workspace_id, frozenset())

    async def resolve(
        self, workspace_id: str, *, secret: object = None, env: object = None, what: str = "credential"
    ) -> str | None:
        """The value, None when the configuration references nothing, CredentialUnavailable otherwise."""
        if secret:
            value = await self.store.reveal(workspace_id, str(secret))
        elif env:
            name = str(env)
            value = self.environ.get(name) if self.env_granted(workspace_id, name) else None
        else:
            return None
        if not value:
            raise CredentialUnavailable(what)
        return value

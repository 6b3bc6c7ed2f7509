"""Reading from the service that owns some data, when this service's event-fed copy has not caught up.

Replicas are fed by events and lag their owner by the time an event takes to arrive. A flow a person runs
step by step (create a recipe, then submit it at once; see a run finished, then assess it) must not see
that lag, so the reader asks the owner, signed with the internal context, for the one record it lacks.
The answer serves the request in hand; the replica still learns the record from its event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from sous_service.internal_client import ContextAuth
from sous_service.internal_context import InternalContext

logger = logging.getLogger("sous.owner_reads")


@dataclass(frozen=True)
class OwnerAnswer:
    status: int
    body: dict[str, Any]


class OwnerReads:
    """GETs from one owner service (`service` is its name, which the signed context is bound to)."""

    def __init__(
        self,
        base_url: str,
        secret: str,
        service: str,
        *,
        reader: str,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.service = service
        self.reader = reader
        self.timeout_s = timeout_s
        self.transport = transport

    def context(self, workspace_id: str, scope: str) -> InternalContext:
        # Only the one scope the read needs, in the caller's workspace: the owner confines it there.
        return InternalContext(workspace_id=workspace_id, user_id=self.reader, scopes=(scope,), auth_type="internal")

    async def get(self, workspace_id: str, scope: str, path: str) -> OwnerAnswer | None:
        """The owner's answer, or None when no owner is configured or it could not be reached."""
        if not self.base_url:
            return None
        auth = ContextAuth(self.context(workspace_id, scope), self.secret, self.service)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, transport=self.transport) as client:
                response = await client.get(f"{self.base_url}{path}", auth=auth)
            body = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            logger.info("read from %s %s failed: %s", self.service, path, exc)
            return None
        return OwnerAnswer(response.status_code, body if isinstance(body, dict) else {})

"""Who a use case acts for: the workspace, the user, and the request or event that caused it.

Built from the gateway's signed context on a request and from the envelope in a consumer, so every event a
unit of work records names its actor, correlation and causation the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sous_events.envelope import Actor, Envelope
from sous_service.internal_context import InternalContext
from sous_service.logs import correlation_id_var

AuthType = Literal["jwt", "api_key", "internal", "system"]
AUTH_TYPES: tuple[AuthType, ...] = ("jwt", "api_key", "internal", "system")
# Callers acting for the platform itself (other services, the scheduler, seeding), not for a person.
PRIVILEGED_AUTH: tuple[AuthType, ...] = ("internal", "system")


@dataclass(frozen=True)
class Caller:
    workspace_id: str
    user_id: str
    auth_type: str = "jwt"
    correlation_id: str = ""
    causation_id: str = ""

    @classmethod
    def from_context(cls, context: InternalContext) -> Caller:
        """The caller of an HTTP request; its correlation id follows the request's."""
        return cls(
            workspace_id=context.workspace_id,
            user_id=context.user_id,
            auth_type=context.auth_type,
            correlation_id=correlation_id_var.get() or context.request_id,
        )

    @classmethod
    def from_event(
        cls,
        envelope: Envelope,
        *,
        user_id: str | None = None,
        auth_type: AuthType | None = None,
        workspace_id: str | None = None,
    ) -> Caller:
        """The caller of a consumed event's reaction: its actor (or the given user), caused by that event."""
        return cls(
            workspace_id=workspace_id or envelope.workspace_id,
            user_id=user_id or envelope.actor.user_id,
            auth_type=auth_type or envelope.actor.auth_type,
            correlation_id=envelope.correlation_id or envelope.event_id,
            causation_id=envelope.event_id,
        )

    @property
    def actor(self) -> Actor:
        auth: AuthType = self.auth_type if self.auth_type in AUTH_TYPES else "jwt"
        return Actor(user_id=self.user_id, auth_type=auth)

    @property
    def privileged(self) -> bool:
        return self.auth_type in PRIVILEGED_AUTH

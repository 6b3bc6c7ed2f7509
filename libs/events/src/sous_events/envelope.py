"""The envelope every event travels in (docs/events.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sous_events.ids import new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    user_id: str = "system"
    auth_type: Literal["jwt", "api_key", "internal", "system"] = "system"


SYSTEM_ACTOR = Actor()


class EventPayload(BaseModel):
    """Base of every typed payload. Unknown fields are ignored so older consumers read newer events."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str = Field(default_factory=new_id)
    event_type: str
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)
    producer: str
    workspace_id: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int = Field(ge=1)
    correlation_id: str = ""
    causation_id: str = ""
    actor: Actor = SYSTEM_ACTOR
    # The payload as written, at `schema_version`: read it through sous_events.registry.payload_of, which
    # upcasts it to the current version and returns its typed model.
    payload: dict[str, Any] = Field(default_factory=dict)
    traceparent: str = ""

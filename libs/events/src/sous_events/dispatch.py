"""Typed dispatch: a consumer declares `{PayloadClass: handler}`; topics and event types come from the registry.

Every record is decoded through the registry (`payload_as`), so upcasters apply on every path, and each
handler receives its payload as its model, or as the narrower view its consumer declared for it: a view
names a subset of the payload's fields, so a consumer that needs a few fields of a large payload does not
validate (nor build) the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.envelope import Envelope, EventPayload
from sous_events.registry import UnknownEventType, payload_as, spec_of

# (session in the consumer's inbox transaction, the envelope for its metadata, the typed payload)
# A handler may return something (for its direct callers); the consumer ignores it.
TypedHandler = Callable[[AsyncSession, Envelope, Any], Awaitable[object]]


class Dispatch:
    """The handler a ConsumerRunner calls: decodes the envelope and routes the payload by its class."""

    def __init__(
        self,
        handlers: Mapping[type[EventPayload], TypedHandler],
        views: Mapping[type[EventPayload], type[EventPayload]] | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("a consumer handles at least one event type")
        views = views or {}
        for payload, view in views.items():
            unknown = set(view.model_fields) - set(payload.model_fields)
            if payload not in handlers or unknown:
                raise ValueError(f"{view.__name__} is not a view of a handled {payload.__name__}: {sorted(unknown)}")
        self.handlers = {spec_of(payload).event_type: handler for payload, handler in handlers.items()}
        self.models = {spec_of(payload).event_type: views.get(payload, payload) for payload in handlers}
        self.topics = sorted({spec_of(payload).topic for payload in handlers})

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self.handlers)

    async def __call__(self, session: AsyncSession, envelope: Envelope) -> None:
        handler = self.handlers.get(envelope.event_type)
        if handler is None:
            raise UnknownEventType(f"no handler for {envelope.event_type!r}")
        await handler(session, envelope, payload_as(envelope, self.models[envelope.event_type]))

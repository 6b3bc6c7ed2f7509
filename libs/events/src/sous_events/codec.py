"""JSON codec for envelopes and their Kafka headers."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sous_events.envelope import Envelope

HEADER_EVENT_TYPE = "event_type"
HEADER_EVENT_ID = "event_id"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_TRACEPARENT = "traceparent"


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def decode(data: bytes) -> Envelope:
    return Envelope.model_validate_json(data)


def decode_wanted(
    data: bytes, headers: Iterable[tuple[str, bytes]] | None, wanted: Collection[str] | None
) -> Envelope | None:
    """The record's envelope when its type is in `wanted` (None: every type is), else None.

    Most consumers handle a few types of a topic: a record whose event_type header names another type is
    passed over without decoding its value; one without the header is decoded and judged by its envelope.
    """
    if wanted is not None:
        for key, value in headers or ():
            if key == HEADER_EVENT_TYPE and bytes(value).decode(errors="replace") not in wanted:
                return None
    envelope = decode(data)
    return envelope if wanted is None or envelope.event_type in wanted else None


def kafka_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    headers = [
        (HEADER_EVENT_TYPE, envelope.event_type.encode()),
        (HEADER_EVENT_ID, envelope.event_id.encode()),
        (HEADER_SCHEMA_VERSION, str(envelope.schema_version).encode()),
    ]
    if envelope.traceparent:
        headers.append((HEADER_TRACEPARENT, envelope.traceparent.encode()))
    return headers


def kafka_key(envelope: Envelope) -> bytes:
    return envelope.aggregate_id.encode()

"""JSON codec for envelopes and their Kafka headers."""

from __future__ import annotations

from sous_events.envelope import Envelope

HEADER_EVENT_TYPE = "event_type"
HEADER_EVENT_ID = "event_id"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_TRACEPARENT = "traceparent"


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def decode(data: bytes) -> Envelope:
    return Envelope.model_validate_json(data)


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

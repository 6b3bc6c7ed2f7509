"""The tables every service keeps in its own database: event store, outbox, inbox."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

event_store = Table(
    "event_store",
    metadata,
    Column("position", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("workspace_id", String(100), nullable=False),
    Column("aggregate_type", String(100), nullable=False),
    Column("aggregate_id", String(200), nullable=False),
    Column("aggregate_version", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("envelope", JSONB, nullable=False),
    UniqueConstraint("aggregate_type", "aggregate_id", "aggregate_version", name="uq_event_store_stream_version"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    # A row the broker refuses for good (too large, invalid) is parked: the relay skips it and holds back
    # the later rows of its key until an operator re-sends or discards it.
    Column("parked_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("ix_outbox_unsent", "id", postgresql_where="sent_at IS NULL"),
    Index("ix_outbox_parked", "key", postgresql_where="parked_at IS NOT NULL AND sent_at IS NULL"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(200), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

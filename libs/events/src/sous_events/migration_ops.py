"""Alembic operations that create the event tables; each service's first migration calls these."""

from __future__ import annotations

from typing import Any

from sous_events.tables import metadata


def create_event_tables(op: Any) -> None:
    """Create event_store, outbox and inbox (and their indexes) in the service's database."""
    metadata.create_all(bind=op.get_bind())


def drop_event_tables(op: Any) -> None:
    metadata.drop_all(bind=op.get_bind())


# Outbox parking (parked_at, last_error, attempts) for an outbox created before it existed; idempotent.
OUTBOX_PARKING_DDL = (
    "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz, "
    "ADD COLUMN IF NOT EXISTS last_error text, "
    "ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS ix_outbox_parked ON outbox (key) WHERE parked_at IS NOT NULL AND sent_at IS NULL",
)


def add_outbox_parking(op: Any) -> None:
    """Bring an outbox created before parking existed up to date (a no-op on newer databases)."""
    for statement in OUTBOX_PARKING_DDL:
        op.execute(statement)

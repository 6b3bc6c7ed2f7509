"""Alembic operations that create the event tables; each service's first migration calls these."""

from __future__ import annotations

from typing import Any

from sous_events.tables import metadata


def create_event_tables(op: Any) -> None:
    """Create event_store, outbox and inbox (and their indexes) in the service's database."""
    metadata.create_all(bind=op.get_bind())


def drop_event_tables(op: Any) -> None:
    metadata.drop_all(bind=op.get_bind())

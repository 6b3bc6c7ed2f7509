"""Recent deliveries per webhook: replay detection and the per-webhook rate limit (migration 0002)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, func

metadata = MetaData()

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("webhook_id", String(200), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_webhook_deliveries_recent", "webhook_id", "received_at"),
)

"""The secret store's table (its own metadata: created by migration 0002, not by 0001's create_all)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table, func

metadata = MetaData()

workspace_secrets = Table(
    "workspace_secrets",
    metadata,
    Column("workspace_id", String(100), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("kek_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created_by", String(200), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

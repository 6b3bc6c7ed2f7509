"""The gateway's own tables (database `sous_gateway`)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, LargeBinary, MetaData, String, Table
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("workspace_id", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("scopes", ARRAY(String(64)), nullable=False),
    # HMAC-SHA256(pepper, secret): see auth/api_keys.py for why not a slow password hash.
    Column("hash", LargeBinary(32), nullable=False),
    Column("prefix", String(64), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    # The key that minted this one (None when a user did): revoking a key revokes what it minted.
    Column("parent_key_id", String(32), nullable=True),
    Index("ix_api_keys_workspace_created", "workspace_id", "created_at"),
    Index("ix_api_keys_parent", "parent_key_id"),
)

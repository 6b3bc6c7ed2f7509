"""API key lineage: the key that minted a key

Revision ID: 0002_key_lineage
Revises: 0001_api_keys
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_key_lineage"
down_revision = "0001_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("parent_key_id", sa.String(32), nullable=True))
    op.create_index("ix_api_keys_parent", "api_keys", ["parent_key_id"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_parent", table_name="api_keys")
    op.drop_column("api_keys", "parent_key_id")

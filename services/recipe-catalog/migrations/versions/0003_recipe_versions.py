"""Proposed recipe versions and their promotion reports.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipe_versions",
        sa.Column("recipe_id", sa.String(64), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("template_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("base_revision", sa.Integer, nullable=False),
        sa.Column("changed_fields", JSONB, nullable=False),
        sa.Column("recipe", JSONB, nullable=False),
        sa.Column("proposed_by", sa.String(200), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replays", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("report", JSONB, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_recipe_versions_template", "recipe_versions", ["workspace_id", "template_id", "revision"])


def downgrade() -> None:
    op.drop_table("recipe_versions")

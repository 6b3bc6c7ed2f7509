"""Event tables, listings read model, creator trust, installs and replicas.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB
from sous_events.migration_ops import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables(op)
    op.create_table(
        "listings",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("name_key", sa.String(300), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("icon", sa.String(300), nullable=True),
        sa.Column("tags", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("creator_id", sa.String(200), nullable=False),
        sa.Column("source_workspace_id", sa.String(100), nullable=False),
        sa.Column("recipe_id", sa.String(200), nullable=False),
        sa.Column("recipe", JSONB, nullable=False),
        sa.Column("agents", JSONB, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("auto_approved", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("rejection_reason", sa.Text, nullable=True),
        sa.Column("moderator_id", sa.String(200), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("install_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index(
        "uq_listings_live_name", "listings", ["name_key"], unique=True, postgresql_where=sa.text("status <> 'rejected'")
    )
    op.create_index("ix_listings_status_category", "listings", ["status", "category"])
    op.create_index("ix_listings_creator", "listings", ["creator_id", "source_workspace_id"])
    op.create_table(
        "creator_approvals",
        sa.Column("creator_id", sa.String(200), primary_key=True),
        sa.Column("listing_id", sa.String(64), primary_key=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "installs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("listing_id", sa.String(64), nullable=False),
        sa.Column("target_workspace_id", sa.String(100), nullable=False),
        sa.Column("template_id", sa.String(300), nullable=False),
        sa.Column("installed_by", sa.String(200), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_installs_listing_id", "installs", ["listing_id"])
    op.create_table(
        "recipe_replicas",
        sa.Column("recipe_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("template_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("snapshot", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("uq_recipe_replicas_template", "recipe_replicas", ["workspace_id", "template_id"], unique=True)
    op.create_table(
        "agent_replicas",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("snapshot", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_agent_replicas_workspace_id", "agent_replicas", ["workspace_id"])
    op.create_table(
        "quality_scores",
        sa.Column("workspace_id", sa.String(100), primary_key=True),
        sa.Column("template_id", sa.String(200), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("grade", sa.String(4), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("quality_scores", "agent_replicas", "recipe_replicas", "installs", "creator_approvals", "listings"):
        op.drop_table(table)
    drop_event_tables(op)

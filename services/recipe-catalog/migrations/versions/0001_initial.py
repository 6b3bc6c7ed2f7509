"""Event tables and the catalog read models.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sous_events.migration_ops import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables(op)
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "recipes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("template_id", sa.String(200), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("tags", postgresql.JSONB, nullable=False),
        sa.Column("is_public", sa.Boolean, nullable=False),
        sa.Column("is_featured", sa.Boolean, nullable=False),
        sa.Column("is_system", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("agent_ids", postgresql.ARRAY(sa.String(200)), nullable=False),
        sa.Column("doc", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("quality_score", sa.Float, nullable=True),
        sa.Column("learning_data", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("use_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("finished_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("success_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("success_rate", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("popularity", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("average_rating", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("install_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("workspace_id", "template_id", name="uq_recipes_workspace_template"),
    )
    op.create_index("ix_recipes_ws_popularity", "recipes", ["workspace_id", sa.text("popularity DESC"), "id"])
    op.create_index("ix_recipes_ws_created", "recipes", ["workspace_id", sa.text("created_at DESC"), "id"])
    op.create_index("ix_recipes_ws_use_count", "recipes", ["workspace_id", sa.text("use_count DESC"), "id"])
    op.create_index("ix_recipes_ws_rating", "recipes", ["workspace_id", sa.text("average_rating DESC"), "id"])
    op.create_index("ix_recipes_ws_name", "recipes", ["workspace_id", "name", "id"])
    op.create_index(
        "ix_recipes_search_trgm",
        "recipes",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index("ix_recipes_agent_ids", "recipes", ["agent_ids"], postgresql_using="gin")
    op.create_table(
        "agents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("doc", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("metrics", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("ix_agents_ws_created", "agents", ["workspace_id", "created_at", "id"])
    op.create_index("ix_agents_ws_name", "agents", ["workspace_id", "name"])
    op.create_table(
        "executions",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("recipe_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_executions_ws_status", "executions", ["workspace_id", "status"])


def downgrade() -> None:
    op.drop_table("executions")
    op.drop_table("agents")
    op.drop_table("recipes")
    drop_event_tables(op)

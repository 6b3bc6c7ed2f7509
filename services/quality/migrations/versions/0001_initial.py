"""Event tables, copies of recipes and executions, assessments, analyses, recipe quality, agent metrics.

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
        "recipe_copies",
        sa.Column("workspace_id", sa.String(100), primary_key=True),
        sa.Column("template_id", sa.String(200), primary_key=True),
        sa.Column("recipe_id", sa.String(64), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("steps_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("steps", JSONB, nullable=False, server_default="[]"),
        sa.Column("inputs", JSONB, nullable=False, server_default="{}"),
        sa.Column("outputs", JSONB, nullable=False, server_default="{}"),
        sa.Column("execution_config", JSONB, nullable=False, server_default="{}"),
        sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "execution_copies",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("recipe_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("recipe", JSONB, nullable=False, server_default="{}"),
        sa.Column("agents", JSONB, nullable=False, server_default="{}"),
        sa.Column("input_data", JSONB, nullable=False, server_default="{}"),
        sa.Column("output_data", JSONB, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("total_duration_ms", sa.Float, nullable=True),
        sa.Column("total_tokens", sa.BigInteger, nullable=True),
        sa.Column("total_cost_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("correlation_id", sa.String(100), nullable=False, server_default=""),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_execution_copies_recipe", "execution_copies", ["workspace_id", "recipe_id"])
    op.create_table(
        "step_results",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("step_id", sa.String(200), primary_key=True),
        sa.Column("order", sa.Integer, nullable=False, server_default="0"),
        sa.Column("agent_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("agent_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("output", JSONB, nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=True),
        sa.Column("tokens", sa.BigInteger, nullable=True),
        sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_table(
        "assessments",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("recipe_id", sa.String(200), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quality_score", sa.Float, nullable=False),
        sa.Column("rolling_score", sa.Float, nullable=False),
        sa.Column("breakdown", JSONB, nullable=False),
        sa.Column("grade", sa.String(2), nullable=False),
        sa.Column("bottlenecks", JSONB, nullable=False),
        sa.Column("recipe_revision", sa.Integer, nullable=True),
        sa.Column("models", JSONB, nullable=False, server_default="[]"),
    )
    op.create_index("ix_assessments_recipe", "assessments", ["workspace_id", "recipe_id", "assessed_at"])
    op.create_table(
        "analyses",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("recipe_id", sa.String(200), nullable=False),
        sa.Column("analyzed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("patterns", JSONB, nullable=False),
        sa.Column("suggestions", JSONB, nullable=False),
        sa.Column("performance_metrics", JSONB, nullable=False),
    )
    op.create_index("ix_analyses_recipe", "analyses", ["workspace_id", "recipe_id"])
    op.create_table(
        "recipe_quality",
        sa.Column("workspace_id", sa.String(100), primary_key=True),
        sa.Column("template_id", sa.String(200), primary_key=True),
        sa.Column("quality_score", sa.Float, nullable=True),
        sa.Column("assessment_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("learning_data", JSONB, nullable=False, server_default="{}"),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "agent_metrics",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("successes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_duration_ms", sa.Float, nullable=False, server_default="0"),
        sa.Column("total_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_cost_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    for table in (
        "agent_metrics",
        "recipe_quality",
        "analyses",
        "assessments",
        "step_results",
        "execution_copies",
        "recipe_copies",
    ):
        op.drop_table(table)
    drop_event_tables(op)

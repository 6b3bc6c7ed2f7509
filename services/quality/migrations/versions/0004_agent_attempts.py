"""Attempts counted towards an agent and not yet in an AgentMetricsUpdated (one event per agent per window).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("workspace_id", sa.String(100), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.Column("total_duration_ms", sa.Float, nullable=False),
        sa.Column("total_tokens", sa.BigInteger, nullable=False),
        sa.Column("total_cost_usd", sa.Float, nullable=False),
    )
    op.create_index("ix_agent_attempts_agent", "agent_attempts", ["agent_id"])


def downgrade() -> None:
    op.drop_table("agent_attempts")

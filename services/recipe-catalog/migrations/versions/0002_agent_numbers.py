"""Agents get a stable number per workspace (the origin platform's integer agent ids).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("number", sa.Integer, nullable=True))
    op.create_table(
        "agent_numbers",
        sa.Column("workspace_id", sa.String(100), primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    # Agents registered before numbers existed: numbered in the order they were created.
    op.execute(
        """
        WITH numbered AS (
            SELECT id, row_number() OVER (PARTITION BY workspace_id ORDER BY created_at, id) AS n FROM agents
        )
        UPDATE agents a SET number = numbered.n, doc = jsonb_set(a.doc, '{number}', to_jsonb(numbered.n))
        FROM numbered WHERE a.id = numbered.id
        """
    )
    op.execute(
        "INSERT INTO agent_numbers (workspace_id, last_number) SELECT workspace_id, max(number) FROM agents "
        "GROUP BY workspace_id"
    )
    op.create_index("uq_agents_ws_number", "agents", ["workspace_id", "number"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_agents_ws_number", table_name="agents")
    op.drop_table("agent_numbers")
    op.drop_column("agents", "number")

"""A step copy says whether its result was reused from an earlier run (a rerun's or a replay's); an
assessment says whether it counted (a run in which no step ran does not).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("step_results", sa.Column("reused", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("assessments", sa.Column("counted", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    op.drop_column("assessments", "counted")
    op.drop_column("step_results", "reused")

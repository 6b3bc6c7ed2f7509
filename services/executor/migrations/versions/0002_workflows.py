"""Workflows: definitions, runs, run leases, memory (full-text search), quality signals, agent metrics.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from sous_executor.workflows.tables import metadata

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())

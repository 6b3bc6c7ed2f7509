"""Event tables, executions read model, leases, replicas, cron runs.

Revision ID: 0001
Revises:
"""

from alembic import op
from sous_events.migration_ops import create_event_tables, drop_event_tables

from sous_executor.adapters.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables(op)
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
    drop_event_tables(op)

"""Replica version guard and tombstones; index of pending executions for the capacity sweeper.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# 0001 creates tables from the live metadata, so on a new database these already exist.
STATEMENTS = (
    "ALTER TABLE recipe_replicas ADD COLUMN IF NOT EXISTS deleted boolean NOT NULL DEFAULT false",
    "ALTER TABLE agent_replicas ADD COLUMN IF NOT EXISTS revision integer NOT NULL DEFAULT 0",
    "ALTER TABLE agent_replicas ADD COLUMN IF NOT EXISTS deleted boolean NOT NULL DEFAULT false",
    "CREATE INDEX IF NOT EXISTS ix_executions_pending ON executions (created_at) WHERE status = 'pending'",
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_executions_pending")
    op.execute("ALTER TABLE agent_replicas DROP COLUMN IF EXISTS deleted")
    op.execute("ALTER TABLE agent_replicas DROP COLUMN IF EXISTS revision")
    op.execute("ALTER TABLE recipe_replicas DROP COLUMN IF EXISTS deleted")

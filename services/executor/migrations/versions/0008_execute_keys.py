"""Idempotency keys of execute requests: a retried request starts its execution (or workflow run) once

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 creates tables from the live metadata, so on a new database this one already exists.
    op.execute(
        "CREATE TABLE IF NOT EXISTS execute_keys ("
        " workspace_id varchar(100) NOT NULL, idempotency_key varchar(255) NOT NULL,"
        " request_sha256 varchar(64) NOT NULL, started_id varchar(64) NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (workspace_id, idempotency_key))"
    )
    op.execute("CREATE INDEX IF NOT EXISTS ix_execute_keys_created ON execute_keys (workspace_id, created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS execute_keys")

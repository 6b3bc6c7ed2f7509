"""Admission of a start at the end of its transaction: a function that counts under the workspace's lock

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The counts run after the lock is granted: a VOLATILE function takes a fresh snapshot for each of its
    # queries, so they see the starts that committed while this one waited (one statement, one round trip).
    op.execute(
        """
        CREATE OR REPLACE FUNCTION sous_admit_start(
            p_workspace varchar, p_lock bigint, p_active varchar[], p_since timestamptz
        ) RETURNS TABLE (active bigint, today bigint) AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(p_lock);
            active := (SELECT count(*) FROM executions e
                       WHERE e.workspace_id = p_workspace AND e.status = ANY (p_active));
            today := CASE WHEN p_since IS NULL THEN 0 ELSE
                       (SELECT count(*) FROM executions e
                        WHERE e.workspace_id = p_workspace AND e.created_at >= p_since) END;
            RETURN NEXT;
        END
        $$ LANGUAGE plpgsql VOLATILE
        """
    )
    # 0001 creates tables from the live metadata, so on a new database this index already exists.
    op.execute("CREATE INDEX IF NOT EXISTS ix_executions_created ON executions (workspace_id, created_at)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_executions_created")
    op.execute("DROP FUNCTION IF EXISTS sous_admit_start(varchar, bigint, varchar[], timestamptz)")

"""NOTIFY on every event append, for live-event streams

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A trigger rather than a NOTIFY in application code: every append path is covered, and the
    # notification is delivered only when the appending transaction commits.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION sous_notify_event_appended() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('sous_events_appended', NEW.aggregate_type || ':' || NEW.aggregate_id);
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER event_store_notify AFTER INSERT ON event_store "
        "FOR EACH ROW EXECUTE FUNCTION sous_notify_event_appended()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS event_store_notify ON event_store")
    op.execute("DROP FUNCTION IF EXISTS sous_notify_event_appended()")

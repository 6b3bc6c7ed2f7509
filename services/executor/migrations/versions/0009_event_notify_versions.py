"""NOTIFY once per stream and append, with the stream's version after it (channel sous_stream_versions)

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One notification per stream an INSERT statement appended to, carrying the stream's last version, on a
    # channel of its own: a live stream that was handed those events by the process that appended them then has
    # nothing to read. The previous release's streams listen on `sous_events_appended` for '<type>:<id>', which
    # is still sent while they may run (expand now; a later release stops sending it).
    op.execute(
        """
        CREATE OR REPLACE FUNCTION sous_notify_events_appended() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('sous_events_appended', aggregate_type || ':' || aggregate_id)
            FROM appended GROUP BY aggregate_type, aggregate_id;
            PERFORM pg_notify(
                'sous_stream_versions', aggregate_type || ':' || aggregate_id || ':' || max(aggregate_version)
            )
            FROM appended GROUP BY aggregate_type, aggregate_id;
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute("DROP TRIGGER IF EXISTS event_store_notify ON event_store")
    op.execute("DROP FUNCTION IF EXISTS sous_notify_event_appended()")
    op.execute(
        "CREATE TRIGGER event_store_notify AFTER INSERT ON event_store REFERENCING NEW TABLE AS appended "
        "FOR EACH STATEMENT EXECUTE FUNCTION sous_notify_events_appended()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS event_store_notify ON event_store")
    op.execute("DROP FUNCTION IF EXISTS sous_notify_events_appended()")
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

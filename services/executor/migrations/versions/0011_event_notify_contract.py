"""Stop notifying the old channel: every stream of the release before this one listens on sous_stream_versions

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD_CHANNEL = """
            PERFORM pg_notify('sous_events_appended', aggregate_type || ':' || aggregate_id)
            FROM appended GROUP BY aggregate_type, aggregate_id;"""
_VERSIONS_CHANNEL = """
            PERFORM pg_notify(
                'sous_stream_versions', aggregate_type || ':' || aggregate_id || ':' || max(aggregate_version)
            )
            FROM appended GROUP BY aggregate_type, aggregate_id;"""


def _notify_function(body: str) -> str:
    return (
        "CREATE OR REPLACE FUNCTION sous_notify_events_appended() RETURNS trigger AS $$\n        BEGIN"
        f"{body}\n            RETURN NULL;\n        END\n        $$ LANGUAGE plpgsql"
    )


def upgrade() -> None:
    # The contract step of 0009: the release that added `sous_stream_versions` listens there only, and it is
    # the release serving while this migration runs. One aggregate over the appended rows and one NOTIFY per
    # append fewer.
    op.execute(_notify_function(_VERSIONS_CHANNEL))


def downgrade() -> None:
    op.execute(_notify_function(_OLD_CHANNEL + _VERSIONS_CHANNEL))

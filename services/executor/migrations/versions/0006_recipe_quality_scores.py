"""The recipes' rolling quality scores, copied from the quality service's events

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 creates tables from the live metadata, so on a new database this one already exists.
    op.execute(
        "CREATE TABLE IF NOT EXISTS recipe_quality_scores ("
        " workspace_id varchar(100) NOT NULL, template_id varchar(200) NOT NULL, score double precision,"
        " version integer NOT NULL DEFAULT 0, PRIMARY KEY (workspace_id, template_id))"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS recipe_quality_scores")

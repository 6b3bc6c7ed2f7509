"""Quality gate: the assessed-runs replica, and featured / flagged listings.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("listings", sa.Column("featured", sa.Boolean, nullable=False, server_default=sa.text("false")))
    op.add_column("listings", sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.text("false")))
    op.add_column("listings", sa.Column("flag_reason", sa.Text, nullable=True))
    op.add_column("listings", sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True))
    # Listings approved before the gate existed are in good standing until their quality says otherwise.
    op.execute("UPDATE listings SET featured = true WHERE status = 'approved'")
    op.create_table(
        "quality_assessments",
        sa.Column("workspace_id", sa.String(100), primary_key=True),
        sa.Column("template_id", sa.String(200), primary_key=True),
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("quality_score", sa.Float, nullable=False),
        sa.Column("rolling_score", sa.Float, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_quality_assessments_recipe_version", "quality_assessments", ["workspace_id", "template_id", "version"]
    )


def downgrade() -> None:
    op.drop_table("quality_assessments")
    for column in ("flagged_at", "flag_reason", "flagged", "featured"):
        op.drop_column("listings", column)

"""A withdrawn listing frees its name, as a rejected one does.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("uq_listings_live_name", table_name="listings")
    op.execute(
        "CREATE UNIQUE INDEX uq_listings_live_name ON listings (name_key) WHERE status NOT IN ('rejected', 'withdrawn')"
    )


def downgrade() -> None:
    op.drop_index("uq_listings_live_name", table_name="listings")
    op.execute("CREATE UNIQUE INDEX uq_listings_live_name ON listings (name_key) WHERE status <> 'rejected'")

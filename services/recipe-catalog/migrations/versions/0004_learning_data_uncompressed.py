"""The recipe's learning_data is stored out of line without compression.

Each batch's analyses of a recipe rewrite the whole document (some 15 KB for 50 analyses): compressed, each
write decompressed the old value and compressed the new one, and each read of the recipe decompressed it.
Values written before keep their form until rewritten.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE recipes ALTER COLUMN learning_data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE recipes ALTER COLUMN learning_data SET STORAGE EXTENDED")

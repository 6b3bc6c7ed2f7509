"""The recipe's learning_data is stored out of line without compression.

Every learning rewrites the whole document (some 15 KB for 50 analyses): compressed, each write decompressed
the old value and compressed the new one, about a fifth of the statement's time. Values written before keep
their form until rewritten.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE recipe_quality ALTER COLUMN learning_data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE recipe_quality ALTER COLUMN learning_data SET STORAGE EXTENDED")

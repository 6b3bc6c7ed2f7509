"""Columns that hold a recipe template id are named template_id.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RENAMED = ("execution_copies", "assessments", "analyses")


def upgrade() -> None:
    for table in RENAMED:
        op.alter_column(table, "recipe_id", new_column_name="template_id")


def downgrade() -> None:
    for table in RENAMED:
        op.alter_column(table, "template_id", new_column_name="recipe_id")

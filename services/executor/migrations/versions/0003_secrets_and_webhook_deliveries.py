"""Workspace secrets (envelope-encrypted) and recent webhook deliveries.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from sous_executor.secrets.tables import metadata as secrets_metadata
from sous_executor.webhooks.tables import metadata as webhooks_metadata

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    secrets_metadata.create_all(bind=op.get_bind())
    webhooks_metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    webhooks_metadata.drop_all(bind=op.get_bind())
    secrets_metadata.drop_all(bind=op.get_bind())

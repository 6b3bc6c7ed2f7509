"""Creating the gateway's database and running its Alembic history (configured in code, no alembic.ini)."""

from __future__ import annotations

from pathlib import Path

from sous_gateway.config import GatewaySettings
from sous_service import migrate as shared

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: GatewaySettings) -> None:
    """Blocking, for the CLI: create `sous_gateway` if missing, then upgrade to head."""
    shared.upgrade(settings, MIGRATIONS_DIR)


async def migrate_async(settings: GatewaySettings) -> None:
    """The same from inside a running event loop (tests, the embedded stack)."""
    await shared.upgrade_async(settings, MIGRATIONS_DIR)

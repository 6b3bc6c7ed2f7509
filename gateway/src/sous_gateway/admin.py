"""Operator helpers that talk to the gateway's database directly (the `create-key` CLI)."""

from __future__ import annotations

from collections.abc import Sequence

from sous_gateway.adapters.key_repository import KeyRepository
from sous_gateway.auth.api_keys import ApiKeyService, derive_pepper
from sous_gateway.config import GatewaySettings
from sous_gateway.scopes import MEMBER_SCOPES
from sous_service.db import create_engine


async def create_api_key(
    settings: GatewaySettings,
    workspace_id: str,
    name: str = "development key",
    scopes: Sequence[str] | None = None,
    expires_in_days: int | None = None,
    created_by: str = "cli",
) -> str:
    """Create a key without going through HTTP (bootstrapping a fresh stack); returns the full key once."""
    engine = create_engine(settings)
    try:
        service = ApiKeyService(
            KeyRepository(engine), derive_pepper(settings.api_key_pepper, settings.internal_secret), 60.0
        )
        _, key = await service.create(
            workspace_id=workspace_id,
            name=name,
            scopes=list(scopes or MEMBER_SCOPES),
            expires_in_days=expires_in_days,
            created_by=created_by,
        )
        return key
    finally:
        await engine.dispose()

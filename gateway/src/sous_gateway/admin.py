"""The gateway's own commands (`mint-jwt`, `create-key`): operator helpers that need no running gateway."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from sous_gateway.adapters.key_repository import KeyRepository
from sous_gateway.auth.api_keys import ApiKeyService, derive_pepper
from sous_gateway.config import GatewaySettings
from sous_gateway.scopes import MEMBER_SCOPES
from sous_gateway.tokens import mint_development_token
from sous_service.db import create_engine
from sous_service.definition import CliCommand


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


def _mint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sub", default="dev-user")
    parser.add_argument("--workspace", action="append", default=[], help="repeatable")
    parser.add_argument("--role", action="append", default=[], help="repeatable: admin, moderator")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds")


def _mint(settings: GatewaySettings, args: argparse.Namespace) -> None:
    print(
        mint_development_token(
            args.sub,
            args.workspace,
            args.role,
            args.ttl,
            secret=settings.jwt_secret,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            workspaces_claim=settings.jwt_workspaces_claim,
        )
    )


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--name", default="development key")
    parser.add_argument("--scope", action="append", default=[], help="repeatable; default: all member scopes")
    parser.add_argument("--expires-in-days", type=int, default=None)
    parser.add_argument("--created-by", default="cli")


def _create_key(settings: GatewaySettings, args: argparse.Namespace) -> None:
    print(
        asyncio.run(
            create_api_key(
                settings, args.workspace, args.name, args.scope or None, args.expires_in_days, args.created_by
            )
        )
    )


COMMANDS: list[CliCommand[GatewaySettings]] = [
    CliCommand("mint-jwt", "print a development HS256 token", _mint, _mint_arguments),
    CliCommand(
        "create-key", "create an API key directly in the database and print it once", _create_key, _key_arguments
    ),
]

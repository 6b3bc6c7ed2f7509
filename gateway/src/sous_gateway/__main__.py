"""`python -m sous_gateway serve | migrate | mint-jwt | create-key`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sous_gateway.config import GatewaySettings


def _serve(settings: GatewaySettings, args: argparse.Namespace) -> None:
    import uvicorn

    from sous_gateway.bootstrap import build_app
    from sous_service.logs import configure_logging
    from sous_service.observability.tracing import configure_tracing

    configure_logging(settings.service_name, settings.log_level)
    configure_tracing("gateway")  # OTEL_TRACES_EXPORTER; off (no SDK) by default
    uvicorn.run(
        build_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


def _mint(settings: GatewaySettings, args: argparse.Namespace) -> None:
    from sous_gateway.tokens import mint_development_token

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


def _create_key(settings: GatewaySettings, args: argparse.Namespace) -> None:
    from sous_gateway.admin import create_api_key

    key = asyncio.run(
        create_api_key(settings, args.workspace, args.name, args.scope or None, args.expires_in_days, args.created_by)
    )
    print(key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sous_gateway", description="The Sous gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (uvicorn on SOUS_GATEWAY_PORT)")
    serve.add_argument("--port", type=int)
    serve.add_argument("--host")
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    mint = sub.add_parser("mint-jwt", help="print a development HS256 token")
    mint.add_argument("--sub", default="dev-user")
    mint.add_argument("--workspace", action="append", default=[], help="repeatable")
    mint.add_argument("--role", action="append", default=[], help="repeatable: admin, moderator")
    mint.add_argument("--ttl", type=int, default=3600, help="seconds")
    key = sub.add_parser("create-key", help="create an API key directly in the database and print it once")
    key.add_argument("--workspace", required=True)
    key.add_argument("--name", default="development key")
    key.add_argument("--scope", action="append", default=[], help="repeatable; default: all member scopes")
    key.add_argument("--expires-in-days", type=int, default=None)
    key.add_argument("--created-by", default="cli")
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    if args.command == "serve":
        _serve(settings, args)
    elif args.command == "migrate":
        from sous_gateway.migrate import migrate

        migrate(settings)
    elif args.command == "mint-jwt":
        _mint(settings, args)
    elif args.command == "create-key":
        _create_key(settings, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

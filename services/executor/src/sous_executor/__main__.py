"""python -m sous_executor serve|migrate|replay|rebuild|rewrap-secrets"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from sous_executor.bootstrap import MIGRATIONS_DIR, build_app, rebuild_read_models, rewrap_secrets
from sous_executor.config import ExecutorSettings
from sous_service.cli import run_service_cli
from sous_service.config import ServiceSettings


def _app(settings: ServiceSettings) -> Any:
    assert isinstance(settings, ExecutorSettings)
    return build_app(settings)


async def _rebuild(settings: ServiceSettings) -> int:
    assert isinstance(settings, ExecutorSettings)
    return await rebuild_read_models(settings)


def main() -> None:
    if sys.argv[1:] == ["rewrap-secrets"]:
        changed = asyncio.run(rewrap_secrets(ExecutorSettings()))
        print(f"re-wrapped {changed} secrets with the active key-encryption key")
        return
    run_service_cli(
        settings_factory=ExecutorSettings, app_factory=_app, migrations_dir=MIGRATIONS_DIR, rebuild=_rebuild
    )


if __name__ == "__main__":
    main()

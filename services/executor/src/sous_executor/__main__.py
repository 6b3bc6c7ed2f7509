"""python -m sous_executor serve|migrate|replay|rebuild"""

from __future__ import annotations

from typing import Any

from sous_executor.bootstrap import MIGRATIONS_DIR, build_app, rebuild_read_models
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
    run_service_cli(
        settings_factory=ExecutorSettings, app_factory=_app, migrations_dir=MIGRATIONS_DIR, rebuild=_rebuild
    )


if __name__ == "__main__":
    main()

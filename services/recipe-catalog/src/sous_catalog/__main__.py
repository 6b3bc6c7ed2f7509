"""`python -m sous_catalog serve|migrate|replay|rebuild`."""

from __future__ import annotations

from sous_catalog.bootstrap import MIGRATIONS_DIR, build_app, rebuild
from sous_catalog.config import CatalogSettings
from sous_service.cli import run_service_cli


def main() -> None:
    run_service_cli(
        settings_factory=CatalogSettings,
        app_factory=build_app,
        migrations_dir=MIGRATIONS_DIR,
        rebuild=rebuild,
    )


if __name__ == "__main__":
    main()

"""`python -m sous_marketplace serve|migrate|replay|rebuild`."""

from __future__ import annotations

from sous_marketplace.bootstrap import MIGRATIONS_DIR, build_app, rebuild
from sous_marketplace.config import MarketplaceSettings
from sous_service.cli import run_service_cli


def main() -> None:
    run_service_cli(
        settings_factory=MarketplaceSettings,
        app_factory=build_app,
        migrations_dir=MIGRATIONS_DIR,
        rebuild=rebuild,
    )


if __name__ == "__main__":
    main()

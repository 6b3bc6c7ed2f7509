"""`python -m sous_quality serve|migrate|replay|rebuild`."""

from __future__ import annotations

from sous_quality.bootstrap import MIGRATIONS_DIR, build_app, rebuild
from sous_quality.config import QualitySettings
from sous_service.cli import run_service_cli


def main() -> None:
    run_service_cli(
        settings_factory=QualitySettings,
        app_factory=build_app,
        migrations_dir=MIGRATIONS_DIR,
        rebuild=rebuild,
    )


if __name__ == "__main__":
    main()

"""`python -m sous_catalog serve|migrate|replay|rebuild`."""

from __future__ import annotations

import sys

from sous_catalog.bootstrap import SERVICE
from sous_service.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(SERVICE))

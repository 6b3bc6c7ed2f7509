"""`python -m sous_marketplace serve|migrate|replay|rebuild`."""

from __future__ import annotations

import sys

from sous_marketplace.bootstrap import SERVICE
from sous_service.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(SERVICE))

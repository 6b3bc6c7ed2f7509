"""`python -m sous_executor serve|migrate|replay|rebuild|rewrap-secrets`."""

from __future__ import annotations

import sys

from sous_executor.bootstrap import SERVICE
from sous_service.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(SERVICE))

"""`python -m sous_quality serve|migrate|replay|rebuild`."""

from __future__ import annotations

import sys

from sous_quality.bootstrap import SERVICE
from sous_service.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(SERVICE))

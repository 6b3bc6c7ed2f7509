"""`python -m sous_gateway serve | migrate | mint-jwt | create-key`."""

from __future__ import annotations

import sys

from sous_gateway.bootstrap import SERVICE
from sous_service.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(SERVICE))

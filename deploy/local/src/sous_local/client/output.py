"""How the client prints: aligned tables, JSON, durations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], out: TextIO) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=out)
        if index == 0:
            print("  ".join("-" * w for w in widths), file=out)


def dump(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=out)


def duration(ms: Any) -> str:
    if ms is None:
        return "-"
    value = float(ms)
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"

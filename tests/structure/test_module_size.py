"""No module in any package's `src/` is longer than 400 lines.

A module that grows past this size has stopped being about one thing; split it by what its parts are about
(and keep the old import path working with a small facade when other code imports from it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400
# Folders never written by hand (none is expected under a `src/` tree today).
NOT_OURS = {".venv", "node_modules", "generated", "vendor", "_vendor", "__pycache__"}
SOURCE_TREES = sorted(p for p in ROOT.glob("**/src") if p.is_dir() and not NOT_OURS.intersection(p.parts))


def _modules() -> list[Path]:
    return sorted(
        path
        for tree in SOURCE_TREES
        for path in tree.rglob("*.py")
        if not NOT_OURS.intersection(path.relative_to(tree).parts)
    )


def _too_long(paths: list[Path], root: Path = ROOT) -> list[str]:
    found = []
    for path in paths:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def test_source_trees_are_found() -> None:
    names = {tree.relative_to(ROOT).as_posix() for tree in SOURCE_TREES}
    assert {"libs/events/src", "libs/service/src", "gateway/src", "deploy/local/src"} <= names
    assert sum(1 for name in names if name.startswith("services/")) >= 4


def test_no_module_in_src_is_over_400_lines() -> None:
    assert _too_long(_modules()) == []


def test_a_long_module_is_reported(tmp_path: Path) -> None:
    long_module = tmp_path / "long.py"
    long_module.write_text("x = 1\n" * (MAX_LINES + 1))
    short_module = tmp_path / "short.py"
    short_module.write_text("x = 1\n" * MAX_LINES)
    assert [line.split(": ")[1] for line in _too_long([long_module, short_module], tmp_path)] == [
        f"{MAX_LINES + 1} lines"
    ]

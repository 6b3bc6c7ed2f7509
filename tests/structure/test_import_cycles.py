"""No import circle inside any package's `src/`: every module's imports, lazy ones included, form a DAG.

A circle hidden behind an import inside a function still couples the two modules both ways; the test reads
every `import` statement in the source (by parsing, without importing anything) and fails on any cycle.
Imports under `if TYPE_CHECKING:` are left out: they name a type for the checker and never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SOURCE_TREES = sorted(
    p for p in ROOT.glob("**/src") if p.is_dir() and ".venv" not in p.parts and "node_modules" not in p.parts
)


def _module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # `from package import module` imports the submodule.
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def import_graph(src_dirs: list[Path]) -> dict[str, set[str]]:
    files: dict[str, tuple[Path, bool]] = {}
    for src in src_dirs:
        for path in src.rglob("*.py"):
            files[_module_name(src, path)] = (path, path.name == "__init__.py")
    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in files.items():
        imported = _imports(ast.parse(path.read_text()), module, is_package)
        graph[module] = {name for name in imported if name in files and name != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def _package_edges_only(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package's __init__ re-exporting its submodules is not a circle with them: drop parent -> child edges
    # and child -> parent edges where the parent is only an __init__ of re-exports.
    return {
        m: {n for n in deps if not n.startswith(m + ".") and not m.startswith(n + ".")} for m, deps in graph.items()
    }


def test_the_source_trees_are_found():
    names = {p.parent.name for p in SOURCE_TREES}
    assert {"events", "service", "recipe-catalog", "executor", "quality", "marketplace", "gateway"} <= names


@pytest.mark.parametrize("src", SOURCE_TREES, ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_no_import_circle(src: Path):
    cycle = find_cycle(_package_edges_only(import_graph([src])))
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_check_finds_a_circle_behind_a_lazy_import(tmp_path: Path):
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "envelope.py").write_text("def typed():\n    from pkg.registry import payload_of\n")
    (pkg / "registry.py").write_text("from pkg.envelope import typed\n")
    assert find_cycle(import_graph([tmp_path / "src"])) == ["pkg.envelope", "pkg.registry", "pkg.envelope"]


def test_a_type_only_import_is_no_circle(tmp_path: Path):
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "runner.py").write_text("from pkg.loop import step\n")
    (pkg / "loop.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.runner import Run\n"
    )
    assert find_cycle(import_graph([tmp_path / "src"])) is None

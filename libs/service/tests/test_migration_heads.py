"""The heads of a migration history, read from its files without importing them or Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sous_service.migrate import head_revisions

REPO = Path(__file__).resolve().parents[3]
HISTORIES = sorted(p.parent for p in REPO.glob("*/*/migrations/env.py")) + sorted(
    p.parent for p in REPO.glob("gateway/migrations/env.py")
)


def write(folder: Path, name: str, revision: str, down: str) -> None:
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    body = f'"""A test revision."""\nfrom alembic import op\n\nrevision = "{revision}"\ndown_revision = {down}\n'
    (folder / "versions" / f"{name}.py").write_text(body)


def test_a_linear_history_has_its_last_revision_as_head(tmp_path: Path) -> None:
    write(tmp_path, "0001_a", "0001", "None")
    write(tmp_path, "0002_b", "0002", '"0001"')
    write(tmp_path, "0003_c", "0003", '"0002"')
    assert head_revisions(tmp_path) == {"0003"}


def test_branches_are_all_heads_until_a_merge_joins_them(tmp_path: Path) -> None:
    write(tmp_path, "0001_a", "0001", "None")
    write(tmp_path, "0002_b", "0002", '"0001"')
    write(tmp_path, "0002_c", "0002c", '"0001"')
    assert head_revisions(tmp_path) == {"0002", "0002c"}
    write(tmp_path, "0003_merge", "0003", '("0002", "0002c")')
    assert head_revisions(tmp_path) == {"0003"}


def test_a_file_without_a_revision_is_refused(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "0001_a.py").write_text("down_revision = None\n")
    with pytest.raises(LookupError):
        head_revisions(tmp_path)


@pytest.mark.parametrize("history", HISTORIES, ids=lambda p: p.parent.name)
def test_every_service_history_has_one_head(history: Path) -> None:
    assert len(head_revisions(history)) == 1


def test_a_service_definition_does_not_import_alembic() -> None:
    # Alembic is imported only when a database is behind its history, not at every start.
    code = "import sys, sous_service.definition, sous_service.cli; print('alembic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

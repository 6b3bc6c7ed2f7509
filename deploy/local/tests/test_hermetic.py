"""Tests ignore the ambient SOUS_* environment: a shell prepared for `make up` must not change them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sous_local.testing import is_ambient_setting, remove_ambient_settings

AMBIENT = {
    "SOUS_JWT_SECRET": "ambient-jwt",
    "SOUS_ENV": "production",
    "SOUS_INTERNAL_SECRET": "ambient-internal",
    "SOUS_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
}

INNER_TEST = """
import os
import subprocess
import sys


def test_no_ambient_setting_reaches_the_test_or_its_subprocesses():
    leaked = sorted(n for n in os.environ if n.startswith("SOUS_") and not n.startswith("SOUS_TEST_"))
    assert leaked == []
    assert os.environ["SOUS_TEST_MARKER"] == "kept"
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(n for n in os.environ if n.startswith('SOUS_')))"],
        capture_output=True, text=True, check=True,
    )
    assert child.stdout.strip() == "['SOUS_TEST_MARKER']"
"""


def _run_inner(tmp_path: Path, *plugin: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    env.update(AMBIENT, SOUS_TEST_MARKER="kept")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, "test_inner.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.unit
def test_service_settings_are_ambient_but_test_infrastructure_settings_are_kept() -> None:
    environ = {"SOUS_JWT_SECRET": "x", "SOUS_TEST_BROKER": "kafka", "SOUS_KAFKA_CACHE": "/c", "PATH": "/bin"}
    assert remove_ambient_settings(environ) == ["SOUS_JWT_SECRET"]
    assert environ == {"SOUS_TEST_BROKER": "kafka", "SOUS_KAFKA_CACHE": "/c", "PATH": "/bin"}
    assert is_ambient_setting("SOUS_ENV")
    assert not is_ambient_setting("SOUS_TEST_DATABASE_URL")


@pytest.mark.unit
def test_this_session_sees_no_ambient_setting() -> None:
    assert [name for name in os.environ if is_ambient_setting(name)] == []


@pytest.mark.integration
def test_the_plugin_removes_ambient_settings_before_tests_and_their_subprocesses_run(tmp_path: Path) -> None:
    result = _run_inner(tmp_path, "-p", "sous_local.testing")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_without_the_plugin_the_same_check_fails(tmp_path: Path) -> None:
    result = _run_inner(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED test_inner.py::test_no_ambient_setting_reaches_the_test_or_its_subprocesses" in result.stdout

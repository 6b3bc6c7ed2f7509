"""The client side of `sous` against a running stack: a seeded system recipe run with --follow, and the rest."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sous_gateway.tokens import mint_development_token
from sous_local.client.profile import load_profile, write_profile
from sous_local.seed import SEED_WORKSPACE
from sous_local.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    state = Path(tempfile.mkdtemp(prefix="sous-cli-"))
    broker = "kafka" if os.environ.get("SOUS_TEST_BROKER") == "kafka" else "embedded"
    running = Stack(
        state,
        broker=broker,
        env={"SOUS_LEASE_TTL_S": "4", "SOUS_HEARTBEAT_INTERVAL_S": "1"},
        durable_postgres=False,
        ports="auto",
        quiet=True,
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def profile(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `sous up` writes: the gateway URL and an API key of the seeded workspace."""
    token = mint_development_token("cli-test", [SEED_WORKSPACE], roles=("admin",), secret=stack.jwt_secret)
    response = httpx.post(
        f"{stack.gateway_url}/api/api-keys",
        headers={"Authorization": f"Bearer {token}", "X-Workspace-ID": SEED_WORKSPACE},
        json={
            "name": "cli test",
            "scopes": ["recipes:read", "recipes:write", "executions:run", "executions:read", "keys:admin"],
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    path = tmp_path_factory.mktemp("profile") / "profile.toml"
    write_profile(path, url=stack.gateway_url, workspace=SEED_WORKSPACE, api_key=response.json()["key"])
    return path


def sous(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    return subprocess.run(
        [sys.executable, "-m", "sous_local.cli", *args, "--profile", str(profile)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


def test_run_follow_prints_each_step_live_and_the_result(profile: Path) -> None:
    result = sous(profile, "recipes", "run", "sample-three-step-chain", "--input", "topic=focaccia", "--follow")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.match(r"execution \S+ of sample-three-step-chain started \(3 steps\)", lines[0])
    for step in ("outline", "draft", "polish"):
        started = next(i for i, line in enumerate(lines) if re.match(rf"\s+{step}\s+started \(attempt 1", line))
        completed = next(i for i, line in enumerate(lines) if re.match(rf"\s+{step}\s+completed in .+ tokens", line))
        assert started < completed
    order = [line.split()[0] for line in lines if " completed in " in line]
    assert order == ["outline", "draft", "polish"]
    assert re.match(r"completed: 3/3 steps, .+ tokens, \$\d+\.\d{6}$", lines[-1])


def test_the_fan_out_shows_its_retry_and_its_tool_call(profile: Path) -> None:
    topic = "rye"  # the first call carrying this topic's failure directive fails (a fresh model server per stack)
    result = sous(profile, "recipes", "run", "sample-parallel-fanout", "-i", f"topic={topic}", "--follow")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"technique\s+failed on attempt 1: .*\(will retry\)", out)
    assert re.search(r"technique\s+retry 2 in \d+\.\d s", out)
    assert re.search(r"technique\s+completed in", out)
    assert re.search(r"ingredients\s+completed in .+, tools: text_stats", out)
    assert out.splitlines()[-1].startswith("completed: 4/4 steps")


def test_create_from_yaml_list_show_rerun_and_keys(profile: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        """
template_id: cli-haiku
name: CLI haiku
description: two steps from a YAML file
steps:
  - step_id: words
    order: 1
    agent: Sous sample agent
    prompt_template: Words about {input.season}
  - step_id: haiku
    order: 2
    agent: Sous sample agent
    prompt_template: "A haiku from: {previous_output}"
inputs:
  season: {type: string, required: true}
  lines: {type: integer, required: true}
"""
    )
    created = sous(profile, "recipes", "create", "-f", str(recipe))
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "created cli-haiku (revision 1)"

    listed = sous(profile, "recipes", "list", "--search", "haiku")
    assert "cli-haiku" in listed.stdout and "1 recipe(s)" in listed.stdout

    # A missing text input runs as the empty string; other types are refused.
    missing = sous(profile, "recipes", "run", "cli-haiku")
    assert missing.returncode == 1
    assert "input_data.lines: required input missing" in missing.stderr

    run = sous(profile, "recipes", "run", "cli-haiku", "--input", "season=winter", "--input", "lines=3")
    assert run.returncode == 0, run.stderr
    execution_id = run.stdout.strip()
    shown = sous(profile, "executions", "show", execution_id, "--follow")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.splitlines()[-1].startswith("completed: 2/2 steps")

    details = sous(profile, "executions", "show", execution_id)
    assert re.search(r"^haiku\s+completed\s+1", details.stdout, re.M), details.stdout

    rerun = sous(profile, "executions", "rerun", execution_id, "--from-step", "haiku", "--follow")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert re.search(r"words\s+reused from " + re.escape(execution_id), rerun.stdout)
    assert rerun.stdout.splitlines()[-1].startswith("completed:")

    limerick = "haiku=A limerick from: {previous_output}"
    replay = sous(profile, "executions", "replay", execution_id, "--prompt", limerick, "--wait")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "runs haiku; reuses words" in replay.stdout
    assert re.search(r"^words\s+reused\s+same$", replay.stdout, re.M), replay.stdout
    assert re.search(r"^haiku\s+rerun\s+changed$", replay.stdout, re.M), replay.stdout
    assert "+Offline answer: A limerick from:" in replay.stdout
    assert re.search(r"^completed: tokens [+-]\d+, cost", replay.stdout, re.M), replay.stdout

    listed_runs = sous(profile, "executions", "list", "--recipe", "cli-haiku")
    assert execution_id in listed_runs.stdout

    keys = sous(profile, "keys", "list")
    assert keys.returncode == 0 and "cli test" in keys.stdout

    unknown = sous(profile, "recipes", "show", "no-such-recipe")
    assert unknown.returncode == 1 and "HTTP 404" in unknown.stderr


def test_the_profile_is_overridden_by_the_environment_and_by_flags(tmp_path: Path) -> None:
    path = write_profile(tmp_path / "p.toml", url="http://127.0.0.1:1", workspace="w1", api_key="sous_a_b")
    assert load_profile(path, env={}).headers() == {"X-API-Key": "sous_a_b", "X-Workspace-ID": "w1"}
    from_env = load_profile(path, env={"SOUS_WORKSPACE": "w2", "SOUS_URL": "http://h:2/"})
    assert (from_env.workspace, from_env.url) == ("w2", "http://h:2")
    flagged = load_profile(path, env={"SOUS_WORKSPACE": "w2"}, flags={"workspace": "w3", "token": "t.t.t"})
    assert flagged.headers() == {"Authorization": "Bearer t.t.t", "X-Workspace-ID": "w3"}
    assert oct(path.stat().st_mode & 0o777) == "0o600"

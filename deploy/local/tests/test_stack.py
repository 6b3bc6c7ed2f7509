"""The embedded stack: every service as a process, reachable, configured from SOUS_*, stopped cleanly."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from sous_local import cli
from sous_local.stack import SERVICES, Stack, StackError, load_or_create_secrets, stop_running_stack

MARKER_VARIABLE = "SOUS_STACK_TEST_MARKER"
MARKER = uuid.uuid4().hex


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("stack") / ".sous"
    running = Stack(
        state_dir,
        broker="embedded",
        env={MARKER_VARIABLE: MARKER},
        durable_postgres=False,
        ports="auto",
        ready_timeout_s=150,
        quiet=True,
    )
    try:
        running.start()
    except StackError as exc:
        pytest.fail(f"the stack did not start:\n{exc}", pytrace=False)
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.e2e
def test_every_service_answers_ready_on_its_port(stack: Stack) -> None:
    assert set(stack.urls) == {spec.name for spec in SERVICES}
    ports = {url.rsplit(":", 1)[1] for url in stack.urls.values()}
    assert len(ports) == len(SERVICES)
    for name, url in stack.urls.items():
        response = httpx.get(f"{url}/readyz", timeout=10)
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
    assert httpx.get(f"{stack.model_url}/models", timeout=10).status_code == 200


@pytest.mark.e2e
def test_gateway_authenticates_with_the_stack_secrets(stack: Stack) -> None:
    gateway = stack.gateway_url
    assert httpx.get(f"{gateway}/api/api-keys", timeout=10).status_code == 401
    token = cli.mint_jwt(stack.jwt_secret, "stack-test", ["default"], ["admin", "moderator"], 300)
    created = cli.create_api_key(gateway, token, "default", "stack test", cli.all_scopes())
    listed = httpx.get(
        f"{gateway}/api/api-keys", headers={"X-API-Key": created["key"], "X-Workspace-ID": "default"}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    assert created["id"] in {item["id"] for item in listed.json()["items"]}
    # A token signed with another secret is refused.
    forged = cli.mint_jwt("not-the-stack-secret-" + "x" * 32, "stack-test", ["default"], ["admin"], 300)
    refused = httpx.get(
        f"{gateway}/api/api-keys", headers={"Authorization": f"Bearer {forged}", "X-Workspace-ID": "default"}
    )
    assert refused.status_code == 401


@pytest.mark.e2e
def test_sous_variables_reach_every_service(stack: Stack) -> None:
    for spec in SERVICES:
        environ = psutil.Process(stack.processes[spec.name].pid).environ()
        assert environ.get(MARKER_VARIABLE) == MARKER, spec.name
        assert environ["SOUS_JWT_SECRET"] == stack.jwt_secret
        assert environ["SOUS_INTERNAL_SECRET"] == stack.internal_secret
        assert environ["SOUS_DATABASE_URL"] == stack.database_url
        assert environ["SOUS_KAFKA_BOOTSTRAP"] == stack.kafka_bootstrap
        assert environ["SOUS_MODEL_BASE_URL"] == stack.model_url
        assert environ["SOUS_PORT"] == stack.urls[spec.name].rsplit(":", 1)[1]
        assert environ[spec.port_variable] == environ["SOUS_PORT"]
    assert stack.env[MARKER_VARIABLE] == MARKER
    assert len(stack.jwt_secret) >= 32 and stack.jwt_secret != stack.internal_secret


@pytest.mark.e2e
def test_stack_file_describes_the_running_stack(stack: Stack) -> None:
    recorded = json.loads((stack.state_dir / "stack.json").read_text())
    assert recorded["gateway_url"] == stack.gateway_url
    assert recorded["database_url"] == stack.database_url
    for name, pid in stack.pids().items():
        assert recorded["processes"][name]["pid"] == pid
    assert cli.main(["status", "--state-dir", str(stack.state_dir)]) == 0


@pytest.mark.e2e
def test_a_killed_service_starts_again_on_its_port(stack: Stack) -> None:
    old_pid = stack.processes["quality"].pid
    assert old_pid is not None
    stack.kill("quality")
    assert not _alive(old_pid)
    stack.start_service("quality")
    assert stack.processes["quality"].pid != old_pid
    assert httpx.get(f"{stack.urls['quality']}/readyz", timeout=10).status_code == 200
    assert httpx.get(f"{stack.gateway_url}/readyz", timeout=10).status_code == 200


@pytest.mark.e2e
def test_stop_leaves_no_process_behind(stack: Stack) -> None:
    # Runs last in this module: everything the stack started, and their children, must be gone.
    pids = set(stack.pids().values())
    for pid in list(pids):
        try:
            pids.update(child.pid for child in psutil.Process(pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    assert len(pids) >= len(SERVICES) + 3  # services, model server, broker, PostgreSQL
    stack.stop()
    assert [pid for pid in pids if _alive(pid)] == []
    assert not (stack.state_dir / "stack.json").exists()
    for spec in SERVICES:
        with socket.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex(("127.0.0.1", int(stack.urls[spec.name].rsplit(":", 1)[1]))) != 0


# -- without a stack ----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_taken_ports_fail_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=rf"gateway on {port}.*SOUS_GATEWAY_PORT"):
            Stack(tmp_path, ports={"gateway": port}, quiet=True).start()
    assert not (tmp_path / "stack.json").exists()


@pytest.mark.unit
def test_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_or_create_secrets(tmp_path, {})
    assert first == load_or_create_secrets(tmp_path, {})
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
    assert load_or_create_secrets(tmp_path, {"SOUS_JWT_SECRET": "given"})["SOUS_JWT_SECRET"] == "given"


@pytest.mark.unit
def test_down_stops_the_processes_a_stack_file_records(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True, stdin=subprocess.DEVNULL
    )
    try:
        record = {"pid": sleeper.pid, "create_time": psutil.Process(sleeper.pid).create_time()}
        (tmp_path / "stack.json").write_text(
            json.dumps({"supervisor": None, "processes": {"catalog": record}, "order": ["catalog"]})
        )
        assert cli.main(["down", "--state-dir", str(tmp_path)]) == 0
        assert not _alive(sleeper.pid)
        assert not (tmp_path / "stack.json").exists()
        assert not stop_running_stack(tmp_path)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


@pytest.mark.unit
def test_each_service_migrates_and_replays_in_its_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sous_local.processes import ManagedProcess
    from sous_local.stack import SERVICE_BY_NAME

    started: dict[str, list[str]] = {}

    def start(self: ManagedProcess, env: object, cwd: object = None) -> None:
        started[self.name] = self.argv
        # What the service prints before it serves when asked to re-publish its event store.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            log.write("re-published 7 events\n" if "--replay" in self.argv else "serving\n")

    monkeypatch.setattr(ManagedProcess, "start", start)
    stack = Stack(tmp_path, ports="auto", quiet=True)
    stack.log_path("catalog").parent.mkdir(parents=True)
    stack.log_path("catalog").write_text("re-published 99 events\n")  # an earlier start's, not counted
    stack._replay_on_start = {"catalog"}
    stack._launch(SERVICE_BY_NAME["catalog"])
    stack._launch(SERVICE_BY_NAME["quality"])
    assert started["catalog"][-3:] == ["serve", "--migrate", "--replay"]
    assert started["quality"][-2:] == ["serve", "--migrate"]
    stack._count_replayed()
    assert stack.replayed_events == 7

"""The console in a real headless Chromium (Playwright for Python), against the whole system as processes.

Run with `make test-browser` (installs Debian's Chromium when missing, then `pytest tests/browser -m browser`).
Without `-m browser` these tests are skipped, so `make test` stays free of a browser.

Every test gets a page that refuses any request outside the gateway's origin and records console errors
and page errors; at teardown the test fails if the console reached elsewhere or logged an error (a
"Failed to load resource" line is tolerated only for the HTTP statuses the test declared with
`console.expect_http_error(status, path_regex)`). Screenshots go to `test-artifacts/browser/`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sous_gateway.tokens import mint_development_token
from sous_local.stack import Stack

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
TIMEOUT_MS = 60_000


def _e2e_conftest() -> ModuleType:
    """The e2e fixtures (the `stack` session fixture: every service as a process), reused as they are."""
    path = Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
    spec = importlib.util.spec_from_file_location("sous_browser_e2e_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stack = _e2e_conftest().stack


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "browser" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="browser tests run with `make test-browser` (pytest -m browser)")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


def chromium_path() -> str:
    for candidate in (os.environ.get("SOUS_CHROMIUM", ""), *CHROMIUM_CANDIDATES, shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("Chromium is missing: run scripts/install-browser.sh (or set SOUS_CHROMIUM)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class ConsoleWatch:
    origin: str
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed_http: list[tuple[int, re.Pattern[str]]] = field(default_factory=list)

    def expect_http_error(self, status: int, path: str) -> None:
        """A 4xx the flow provokes on purpose (the browser logs it as 'Failed to load resource')."""
        self.allowed_http.append((status, re.compile(path)))

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = str(message.text)
        found = re.search(r"Failed to load resource: the server responded with a status of (\d+)", text)
        if found:
            url = str((message.location or {}).get("url", ""))
            path = urlsplit(url).path
            status = int(found.group(1))
            if any(status == s and pattern.search(path) for s, pattern in self.allowed_http):
                return
            text = f"{text} ({url})"
        self.errors.append(text)

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"page error: {error}")


@dataclass
class Console:
    """A signed-out console tab on the stack's gateway."""

    page: Any
    watch: ConsoleWatch
    base: str
    name: str

    def goto(self, fragment: str = "") -> None:
        self.page.goto(f"{self.base}/console/{fragment}")

    def screenshot(self, label: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{label}.png"), full_page=True)

    def sign_in(self, credential: str) -> None:
        from playwright.sync_api import expect

        self.goto()
        self.page.get_by_label("API key or JWT").fill(credential)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    def expect_http_error(self, status: int, path: str) -> None:
        self.watch.expect_http_error(status, path)


@pytest.fixture
def console(browser: Any, stack: Stack, request: pytest.FixtureRequest) -> Iterator[Console]:
    origin = stack.gateway_url.rstrip("/")
    watch = ConsoleWatch(origin)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=origin)
    context.set_default_timeout(TIMEOUT_MS)

    def guard(route: Any) -> None:
        url = str(route.request.url)
        if url == origin or url.startswith(origin + "/"):
            route.continue_()
        else:
            watch.outside.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:80]
    tab = Console(page, watch, origin, name)
    try:
        yield tab
    finally:
        try:
            tab.screenshot("last")
        finally:
            context.close()
    assert not watch.outside, f"the console requested something outside {origin}: {watch.outside}"
    assert not watch.errors, f"the console logged errors: {watch.errors}"


class Api:
    """Direct API calls through the gateway, to set the scene and to wait for the system (not for the UI)."""

    def __init__(self, base: str, token: str, workspace: str) -> None:
        self.token = token
        self.workspace = workspace
        self.client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace},
            timeout=30,
            trust_env=False,
        )

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        response = self.client.request(method, path, **kw)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def status(self, method: str, path: str, **kw: Any) -> int:
        return self.client.request(method, path, **kw).status_code


@pytest.fixture
def make_api(stack: Stack) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(
        workspaces: tuple[str, ...] | None = None, roles: tuple[str, ...] = ("admin",), user: str | None = None
    ) -> Api:
        chosen = list(workspaces or (f"ws-{uuid.uuid4().hex[:8]}",))
        token = mint_development_token(
            user or f"user-{uuid.uuid4().hex[:6]}", chosen, roles=roles, secret=stack.jwt_secret
        )
        api = Api(stack.gateway_url, token, chosen[0])
        made.append(api)
        return api

    yield make
    for api in made:
        api.client.close()


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll the API (not the page) until check() is truthy."""
    import time

    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def create_agent(api: Api, name: str = "writer") -> dict[str, Any]:
    body = {
        "name": name,
        "description": "writes things",
        "model_config": {"provider": "offline", "model_id": "sous-offline-1"},
        "skills": ["text_stats"],
        "configuration": {"max_iterations": 4},
    }
    return api.ok("POST", "/api/agents", 201, json=body)  # type: ignore[no-any-return]


def create_recipe(api: Api, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {
        "template_id": extra.pop("template_id", f"r-{uuid.uuid4().hex[:8]}"),
        "name": extra.pop("name", f"Recipe {uuid.uuid4().hex[:6]}"),
        "description": "a browser-test recipe",
        "template_definition": {},
        "steps": steps,
        **extra,
    }
    return api.ok("POST", "/api/workflow-recipes", 201, json=body)["recipe"]  # type: ignore[no-any-return]


def wait_for_executor(api: Api, template_id: str) -> None:
    wait_until(
        lambda: api.status("GET", f"/api/workflow-recipes/{template_id}/executions") == 200,
        f"recipe {template_id} at the executor",
    )

"""The console's static files, the API reference pages with local assets, and GET /api/session."""

from __future__ import annotations

import re

import pytest

from sous_gateway.console import STATIC_DIR

pytestmark = pytest.mark.integration


@pytest.fixture
async def gw(make_gateway):
    return await make_gateway()


async def test_console_files_need_no_credential_and_forbid_other_origins(gw):
    redirect = await gw.client.get("/console", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/console/"
    page = await gw.client.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("js/app.js", "js/api.js", "css/console.css", "favicon.svg"):
        response = await gw.client.get(f"/console/{asset}")
        assert response.status_code == 200, asset
    assert (await gw.client.get("/console/js/nope.js")).status_code == 404


def test_console_sources_reach_nothing_outside_their_origin():
    """No absolute URL to another host, no inline script or style, no HTML built from strings."""
    for path in STATIC_DIR.rglob("*"):
        if path.suffix not in (".html", ".js", ".css"):
            continue
        text = path.read_text()
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), path
        assert not re.search(r"url\(\s*[\"']?(https?:)?//", text), path
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
            assert "style=" not in text, path


async def test_docs_and_redoc_use_assets_served_here(gw):
    for page, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        html = (await gw.client.get(page)).text
        assert "/openapi.json" in html
        assert "cdn." not in html and "fonts.googleapis" not in html
        for asset in assets:
            assert f"/api-docs-assets/{asset}" in html
            response = await gw.client.get(f"/api-docs-assets/{asset}")
            assert response.status_code == 200 and len(response.content) > 10_000


async def test_session_tells_who_the_credential_is_in_the_chosen_workspace(gw, mint):
    assert (await gw.client.get("/api/session")).status_code == 401
    single = mint(sub="ann", workspaces=["w1"], roles=["admin"])
    body = (await gw.client.get("/api/session", headers={"Authorization": f"Bearer {single}"})).json()
    assert (body["user_id"], body["auth_type"], body["workspaces"], body["workspace"]) == ("ann", "jwt", ["w1"], "w1")
    assert "keys:admin" in body["scopes"] and body["roles"] == ["admin"]

    several = mint(sub="bob", workspaces=["w1", "w2"], roles={"w1": ["moderator"], "w2": []})
    headers = {"Authorization": f"Bearer {several}"}
    unchosen = (await gw.client.get("/api/session", headers=headers)).json()
    assert unchosen["workspaces"] == ["w1", "w2"] and unchosen["workspace"] is None
    in_w1 = (await gw.client.get("/api/session", headers={**headers, "X-Workspace-ID": "w1"})).json()
    assert in_w1["roles"] == ["moderator"] and "marketplace:moderate" in in_w1["scopes"]
    in_w2 = (await gw.client.get("/api/session", headers={**headers, "X-Workspace-ID": "w2"})).json()
    assert "marketplace:moderate" not in in_w2["scopes"]
    other = await gw.client.get("/api/session", headers={**headers, "X-Workspace-ID": "w3"})
    assert other.status_code == 403

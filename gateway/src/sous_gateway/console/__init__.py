"""The Sous Console and the API reference pages, served by the gateway with assets shipped in packages.

- `/console/` the console: one HTML page, ES modules and CSS from `static/` (no build step). The files are
  public (they hold no data); every API call the page makes carries the caller's credential.
- `/docs` (Swagger UI) and `/redoc` (ReDoc) over `/openapi.json`, their assets from the `fastapi-offline`
  package under `/api-docs-assets/`: nothing is loaded from a CDN.
- `GET /api/session`: who the credential is (workspaces, roles, scopes), so a client can choose a workspace.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sous_gateway.console.session import Authenticate, session_router

STATIC_DIR = Path(__file__).resolve().parent / "static"
DOCS_ASSETS = "/api-docs-assets"

# The console runs only its own files and talks only to this origin.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _docs_assets_dir() -> Path:
    return Path(str(resources.files("fastapi_offline") / "static"))


class _WithHeaders:
    """Adds fixed response headers to every response of the wrapped app (static files)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + self.headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_console(app: FastAPI, authenticate: Authenticate, openapi_url: str = "/openapi.json") -> None:
    """Mounts the console, the API reference pages and their assets, and `GET /api/session` (authenticated
    by `authenticate`, the gateway's own step)."""
    app.include_router(session_router(authenticate))
    console_headers = {
        "Content-Security-Policy": CONSOLE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }
    app.mount("/console", _WithHeaders(StaticFiles(directory=STATIC_DIR, html=True), console_headers), name="console")
    app.mount(
        DOCS_ASSETS,
        _WithHeaders(StaticFiles(directory=_docs_assets_dir()), {"X-Content-Type-Options": "nosniff"}),
        name="api-docs-assets",
    )

    @app.get("/console", include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title="Sous API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title="Sous API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

"""A local stand-in for the parts of Composio's HTTP API (v3.1) that the executor's adapter reaches via the SDK.

Answers exactly what `Composio.tools.get(user_id, toolkits=[...])` and `Composio.tools.execute(...)` send:
  GET  /api/v3.1/tools?toolkit_slug=a,b         tool schemas of the toolkits (a page of items)
  GET  /api/v3.1/tools/{tool_slug}              one tool schema (the SDK fetches it if it has not listed it)
  POST /api/v3.1/tools/execute/{tool_slug}      {"user_id", "arguments", "version"} -> {"data", "successful", ...}
Every request is recorded; anything else answers 404 (and is recorded too). Requests without the API key
as `x-api-key` answer 401.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_KEY = "stub-project-key"


def tool_schema(slug: str, toolkit: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """One tool in the shape the API returns it (list items and the single-tool answer alike)."""
    toolkit_info = {"slug": toolkit, "name": toolkit.title(), "logo": f"/logos/{toolkit}.png"}
    return {
        "slug": slug,
        "name": slug.replace("_", " ").title(),
        "description": description,
        "human_description": None,
        "input_parameters": parameters,
        "output_parameters": {"type": "object", "properties": {"data": {"type": "object"}}},
        "toolkit": toolkit_info,
        "version": "20260101_00",
        "available_versions": ["20260101_00"],
        "deprecated": {
            "available_versions": ["20260101_00"],
            "displayName": slug,
            "is_deprecated": False,
            "toolkit": {"logo": toolkit_info["logo"]},
            "version": "20260101_00",
        },
        "is_deprecated": False,
        "no_auth": False,
        "scopes": [],
        "scope_requirements": None,
        "tags": [],
    }


CATALOGUE: dict[str, list[dict[str, Any]]] = {
    "github": [
        tool_schema(
            "GITHUB_STAR_A_REPOSITORY",
            "github",
            "Star a repository for the connected user.",
            {
                "type": "object",
                "properties": {
                    "owner": {"type": "string", "description": "The account owner of the repository."},
                    "repo": {"type": "string", "description": "The name of the repository."},
                },
                "required": ["owner", "repo"],
            },
        ),
    ],
    "slack": [
        tool_schema(
            "SLACK_SEND_MESSAGE",
            "slack",
            "Send a message to a Slack channel.",
            {
                "type": "object",
                "properties": {"channel": {"type": "string"}, "text": {"type": "string"}},
                "required": ["channel", "text"],
            },
        ),
    ],
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class ComposioStub:
    """Composio's API on 127.0.0.1 at a free port, in a thread, recording each request it answers."""

    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def executions(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith("/api/v3.1/tools/execute/")]

    def _app(self) -> Starlette:
        async def record(request: Request) -> tuple[Recorded, JSONResponse | None]:
            body: Any = None
            raw = await request.body()
            if raw:
                try:
                    body = await request.json()
                except ValueError:
                    body = raw.decode(errors="replace")
            seen = Recorded(request.method, request.url.path, dict(request.query_params), dict(request.headers), body)
            self.requests.append(seen)
            if request.headers.get("x-api-key") != API_KEY:
                return seen, JSONResponse({"error": {"message": "invalid API key"}}, status_code=401)
            return seen, None

        async def list_tools(request: Request) -> JSONResponse:
            seen, refused = await record(request)
            if refused is not None:
                return refused
            toolkits = [t for t in seen.query.get("toolkit_slug", "").lower().split(",") if t]
            slugs = {s for s in seen.query.get("tool_slugs", "").split(",") if s}
            items = [
                tool
                for toolkit, tools in CATALOGUE.items()
                for tool in tools
                if toolkit in toolkits or tool["slug"] in slugs
            ]
            return JSONResponse(
                {"items": items, "next_cursor": None, "total_items": len(items), "total_pages": 1, "current_page": 1}
            )

        async def get_tool(request: Request) -> JSONResponse:
            _seen, refused = await record(request)
            if refused is not None:
                return refused
            slug = request.path_params["slug"]
            for tools in CATALOGUE.values():
                for tool in tools:
                    if tool["slug"] == slug:
                        return JSONResponse(tool)
            return JSONResponse({"error": {"message": f"tool {slug} not found"}}, status_code=404)

        async def execute(request: Request) -> JSONResponse:
            seen, refused = await record(request)
            if refused is not None:
                return refused
            slug = request.path_params["slug"]
            body = seen.body if isinstance(seen.body, dict) else {}
            user_id = body.get("user_id")
            arguments = body.get("arguments") or {}
            if slug == "GITHUB_STAR_A_REPOSITORY" and arguments.get("repo") == "missing":
                data: dict[str, Any] = {"status_code": 404}
                return JSONResponse(
                    {"data": data, "error": "Repository not found", "successful": False, "log_id": "log_stub_2"}
                )
            data = {"tool": slug, "ran_for": user_id, "arguments": arguments}
            return JSONResponse({"data": data, "error": None, "successful": True, "log_id": "log_stub_1"})

        async def anything_else(request: Request) -> JSONResponse:
            await record(request)
            return JSONResponse({"error": {"message": "not part of the stub"}}, status_code=404)

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(
            routes=[
                Route("/api/v3.1/tools", list_tools, methods=["GET"]),
                Route("/api/v3.1/tools/execute/{slug}", execute, methods=["POST"]),
                Route("/api/v3.1/tools/{slug}", get_tool, methods=["GET"]),
                Route("/{rest:path}", anything_else, methods=methods),
            ]
        )

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Composio stub did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

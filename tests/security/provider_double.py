"""A stand-in for an external provider, in the test process: the one origin the security stack allows.

It answers OpenAI chat completions and records each request's Authorization header and model, so a test
sees exactly which key the executor sent; a key containing "reject" gets a 401 whose text echoes part of
the key, as real providers do. `GET /page` is a plain page and `GET /redirect?to=URL` a redirect, for
the http_get tool.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProviderDouble:
    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def seen(self, model: str) -> list[str]:
        """The Authorization headers of the chat calls made with this model."""
        with self._lock:
            return [c["authorization"] for c in self.calls if c["model"] == model]

    def start(self) -> None:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/redirect":
                    target = parse_qs(parts.query).get("to", [""])[0]
                    self._send(302, {}, {"Location": target})
                else:
                    self._send(200, {"page": "hello from the allowed origin"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                auth = self.headers.get("Authorization") or ""
                with double._lock:
                    double.calls.append({"authorization": auth, "model": request.get("model")})
                if "reject" in auth:
                    key = auth.removeprefix("Bearer ")
                    message = f"Incorrect API key provided: {key[:8]}***{key[-4:]}. You can find your key at ..."
                    self._send(
                        401, {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
                    )
                    return
                self._send(
                    200,
                    {
                        "id": "chatcmpl-double",
                        "object": "chat.completion",
                        "created": 0,
                        "model": request.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "answer from the double"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                    },
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

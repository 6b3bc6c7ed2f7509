"""The gateway, as the client commands see it: JSON calls with the profile's credential, and event streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from sous_local.client.profile import Profile


class ClientError(Exception):
    """An answer the command cannot go on with; the message is for people."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _error(response: httpx.Response) -> ClientError:
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:500]}
    detail = body.get("detail") if isinstance(body, dict) else None
    lines = [f"HTTP {response.status_code}: {detail or response.reason_phrase}"]
    if isinstance(body, dict):
        for error in body.get("errors") or []:
            if isinstance(error, dict):
                lines.append(f"  {error.get('field')}: {error.get('message')}")
    if response.status_code == 401:
        lines.append("  (check the credential: `sous up` writes a profile, or pass --api-key / --token)")
    return ClientError("\n".join(lines), response.status_code, body)


@dataclass(frozen=True)
class SseEvent:
    id: str
    event: str
    data: Any


class Gateway:
    def __init__(self, profile: Profile, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        if not (profile.api_key or profile.token):
            where = profile.path or "the profile"
            raise ClientError(
                f"no credential: none in {where}, SOUS_API_KEY/SOUS_TOKEN or --api-key/--token "
                "(`sous up` writes the profile)"
            )
        self.profile = profile
        self._client = httpx.Client(
            base_url=profile.url,
            headers=profile.headers(),
            timeout=httpx.Timeout(timeout_s),
            trust_env=False,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            response = self._client.request(method, path, json=json_body, params=clean, headers=headers)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach the gateway at {self.profile.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.call("POST", path, json_body={} if body is None else body, headers=headers)

    def events(self, path: str) -> Iterator[SseEvent]:
        """Server-Sent Events of `path` until the server ends the stream."""
        try:
            with self._client.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=httpx.Timeout(30.0, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                yield from parse_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise ClientError(f"the event stream broke: {exc}") from exc


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    event_id, event = "", "message"
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    payload: Any = json.loads(text)
                except ValueError:
                    payload = text
                yield SseEvent(event_id, event, payload)
            event_id, event, data = "", "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield SseEvent(event_id, event, "\n".join(data))

"""The benchmark's HTTP/1.1 client: keep-alive connections, a request and its whole response, nothing more.

The load generator shares the cores it measures, and DBOS's side of the comparison makes no HTTP calls at all.
httpx spent about 1.3 ms of CPU per request here (its pool, its request and response models, its auth flow):
more than the executor's own work for a start. This client writes a request's bytes and reads the status line,
the headers and the body (by Content-Length or chunked), so the cores go to the engine under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

Signer = Callable[[str, str, bytes], dict[str, str]]  # (method, target, body) -> headers to add


class WireError(Exception):
    """The connection failed or closed before the response was whole (args: message, the partial body, the
    response's headers when they were read)."""


@dataclass(frozen=True)
class WireResponse:
    status: int
    body: bytes
    headers: dict[str, str]  # names in lower case


class WireClient:
    """Requests to one server over keep-alive connections, at most `max_connections` open at once."""

    def __init__(self, base_url: str, *, sign: Signer, max_connections: int) -> None:
        split = urlsplit(base_url)
        self.host = split.hostname or "127.0.0.1"
        self.port = split.port or 80
        self.sign = sign
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> WireResponse:
        """The whole response; a failed connection raises WireError (the partial body is in its args[1], the
        headers, when read, in args[2])."""
        async with self._slots:
            reader, writer = self._idle.pop() if self._idle else await self._connect()
            lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
            every = {**(headers or {}), **self.sign(method, target, body)}
            if body:
                every["Content-Type"] = "application/json"
            every["Content-Length"] = str(len(body))
            lines += [f"{name}: {value}" for name, value in every.items()]
            received = bytearray()
            fields: dict[str, str] = {}
            try:
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
                status, reusable = await _read_response(reader, received, fields)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                raise WireError(str(exc), bytes(received), fields) from exc
            if reusable:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return WireResponse(status, bytes(received), fields)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except OSError as exc:
            raise WireError(str(exc), b"") from exc

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader, body: bytearray, fields: dict[str, str]) -> tuple[int, bool]:
    """Read one response, its headers into `fields` and its body into `body`; (status, whether the connection
    can carry another request)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip()
    keep_alive = fields.get("connection", "").lower() != "close"
    if fields.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent: the blank line ends the body
                return status, keep_alive
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    if "content-length" in fields:
        body += await reader.readexactly(int(fields["content-length"]))
        return status, keep_alive
    body += await reader.read()  # the body ends with the connection
    return status, False

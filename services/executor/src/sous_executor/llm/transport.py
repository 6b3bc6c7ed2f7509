"""The model client's connections, kept by aiohttp under the openai client's own httpx2 interface.

Every step makes at least one model call, so the HTTP stack's CPU per call is on every run's path. Measured
in one process on uvloop against the offline model server (one chat completion through the openai client,
2,000 calls): 0.90 ms of CPU per call with httpx2's own transport (httpcore2 on anyio), 0.66 ms with the
same client over aiohttp's connection pool. The openai client keeps everything else: the request it builds,
authentication, redirects (followed by httpx2, each hop checked by the egress transport), the timeouts it
passes per request, and its status errors.

A model answer is one JSON document: it is read whole here and handed over as the response's content.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import aiohttp
import httpx2

# httpx2 keeps an idle connection this long; servers behind load balancers close theirs after a minute or
# more, so a connection is never reused just as the server drops it.
KEEPALIVE_S = 5.0

# The most specific class first: aiohttp's timeouts are also connection errors and OSErrors.
_ERRORS: tuple[tuple[type[BaseException], type[httpx2.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx2.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx2.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx2.ReadTimeout),
    # Any other expiry still reads as the model's timeout to the client, never as the step's own.
    (TimeoutError, httpx2.TimeoutException),
    (aiohttp.ClientConnectorError, httpx2.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx2.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx2.ReadError),
    (aiohttp.InvalidURL, httpx2.UnsupportedProtocol),
    (aiohttp.ClientError, httpx2.NetworkError),
)


@contextmanager
def _as_httpx_errors(request: httpx2.Request) -> Iterator[None]:
    try:
        yield
    except httpx2.TransportError:
        raise
    except Exception as exc:
        for aiohttp_error, httpx_error in _ERRORS:
            if isinstance(exc, aiohttp_error):
                raise httpx_error(str(exc) or type(exc).__name__, request=request) from exc
        raise


def _client_timeout(timeouts: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
    # httpx2's pool timeout bounds the wait for a connection; aiohttp's `connect` bounds that wait and the
    # connection's opening together, and `sock_connect` the opening alone.
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeouts.get("pool"),
        sock_connect=timeouts.get("connect"),
        sock_read=timeouts.get("read"),
    )


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """httpx2 requests sent on one aiohttp session of at most `max_connections` connections, all kept alive."""

    def __init__(self, max_connections: int, keepalive_s: float = KEEPALIVE_S) -> None:
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=0, keepalive_timeout=self.keepalive_s
            )
            # trust_env off: the destination is the one the egress policy checked, never an ambient proxy.
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False)
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._opened()
        body = await request.aread()
        with _as_httpx_errors(request):
            async with session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
                timeout=_client_timeout(request.extensions.get("timeout", {})),
            ) as response:
                content = await response.read()
                status, reason, headers = response.status, response.reason, list(response.raw_headers)
        # Still encoded as the server sent it (auto_decompress is off): httpx2 decodes by Content-Encoding.
        return httpx2.Response(
            status,
            headers=headers,
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

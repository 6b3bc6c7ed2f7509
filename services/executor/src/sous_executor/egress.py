"""Where the executor may send requests: exact origins chosen by the operator, and no internal addresses.

A destination is allowed when its scheme, host and port equal one of the configured origins (and its
path lies under the origin's path, when one is given). Outside development, the host must also resolve
only to public addresses: loopback, private, link-local (cloud metadata), shared, reserved and multicast
ranges are refused. The check runs before every request, redirects included (the transport below runs
it per hop). A name that resolves differently between the check and the connection is a residual risk;
network policy (deploy/k8s) is the second layer.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
DEFAULT_PORTS = {"http": 80, "https": 443}
# Metadata endpoints that are not covered by the range checks on every platform.
METADATA_ADDRESSES = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2"})


class EgressDenied(Exception):
    """The destination is outside the egress policy."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> Origin:
        value = text.strip()
        if "://" not in value:
            value = "https://" + value
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
            raise ValueError(f"not an http(s) origin: {text!r}")
        return cls(scheme, parts.hostname.lower(), parts.port or DEFAULT_PORTS[scheme], parts.path.rstrip("/"))

    def matches(self, other: Origin) -> bool:
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        return not self.path or other.path == self.path or other.path.startswith(self.path + "/")


@functools.lru_cache(maxsize=1024)
def target_of(url: str) -> Origin | str:
    """The origin a request to `url` goes to, or why no request may go there. Remembered: every model call
    checks the same few URLs (its endpoint, then each hop in the transport) and the answer depends on the URL
    alone; the address check, which does not, runs each time."""
    try:
        target = Origin.parse(url) if "://" in url else None
    except ValueError:
        target = None
    if target is None:
        return "only http(s) URLs without credentials are allowed"
    decoded = unquote(target.path)
    if any(segment in (".", "..") for segment in decoded.split("/")):
        return "dot segments are not allowed in the path"
    return target


def parse_origins(values: Iterable[str]) -> list[Origin]:
    return [Origin.parse(v) for v in values if v.strip()]


def address_blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip) in METADATA_ADDRESSES or not ip.is_global or ip.is_multicast


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class EgressPolicy:
    def __init__(
        self,
        origins: Iterable[str | Origin],
        *,
        block_private: bool,
        resolver: Resolver = system_resolver,
        trusted: Iterable[str | Origin] = (),
    ) -> None:
        """`trusted` origins (the operator's own model endpoint) skip the address-range check."""
        self.origins = [o if isinstance(o, Origin) else Origin.parse(o) for o in origins]
        self.trusted = [o if isinstance(o, Origin) else Origin.parse(o) for o in trusted]
        self.block_private = block_private
        self.resolver = resolver

    def _target(self, url: str) -> Origin:
        target = target_of(url)
        if isinstance(target, str):
            raise EgressDenied(target)
        return target

    def allowed_origin(self, url: str) -> bool:
        try:
            target = self._target(url)
        except EgressDenied:
            return False
        return any(o.matches(target) for o in [*self.trusted, *self.origins])

    async def check(self, url: str) -> None:
        target = self._target(url)
        if any(o.matches(target) for o in self.trusted):
            return
        if not any(o.matches(target) for o in self.origins):
            raise EgressDenied(f"{target.scheme}://{target.host}:{target.port} is not an allowed destination")
        if not self.block_private:
            return
        try:
            addresses = await self.resolver(target.host, target.port)
        except OSError as exc:
            raise EgressDenied(f"{target.host} does not resolve") from exc
        if not addresses or any(address_blocked(a) for a in addresses):
            raise EgressDenied(f"{target.host} resolves to an internal address")


class EgressTransport(httpx.AsyncBaseTransport):
    """Checks every request, each redirect hop included, before it leaves."""

    def __init__(self, policy: EgressPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.policy.check(str(request.url))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

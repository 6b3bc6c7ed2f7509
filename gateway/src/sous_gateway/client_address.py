"""Which client sent a request: the peer, or, behind configured proxies, the address they vouch for.

X-Forwarded-For is only a claim: anyone can send one. It is believed hop by hop from the right, and only
while the hop that added the entry is a configured trusted proxy, so a client cannot pick its own
address (and its own rate-limit bucket) by sending the header itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddresses:
    def __init__(self, trusted: Iterable[str]) -> None:
        self._trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(t, strict=False) for t in trusted)

    def _is_trusted(self, address: str) -> bool:
        if not self._trusted:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def peer_is_trusted(self, scope: Scope) -> bool:
        return self._is_trusted(_peer(scope))

    def resolve(self, scope: Scope) -> str:
        address = _peer(scope)
        if not self._is_trusted(address):
            return address
        for hop in reversed(_forwarded_for(scope)):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return address  # a garbled entry: the last hop we could vouch for is the answer
            address = hop
            if not self._is_trusted(hop):
                return hop
        return address


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _forwarded_for(scope: Scope) -> list[str]:
    hops: list[str] = []
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-forwarded-for":
            hops += [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
    return hops

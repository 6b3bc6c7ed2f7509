"""Egress policy in production mode: exact origins, internal addresses refused after resolution and redirects."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from sous_executor.config import ExecutorSettings
from sous_executor.egress import EgressDenied, EgressPolicy, EgressTransport, address_blocked, target_of
from sous_executor.tools.builtin import ToolError, make_http_get

pytestmark = pytest.mark.unit


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


PUBLIC = {"api.example.com": ["93.184.216.34"], "other.example.com": ["93.184.216.35"]}


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com:8443/v1",  # another port of an allowed host
        "http://api.example.com/v1",  # another scheme
        "https://api.example.com.evil.test/v1",
        "https://evil.test/api.example.com",
        "https://user:pw@api.example.com/v1",
        "file:///etc/passwd",
        "https://api.example.com/v1/../admin",
        "https://api.example.com/v1/%2e%2e/admin",
        "https://api.example.com/v2/chat",  # outside the origin's path
    ],
)
async def test_only_exact_origins_under_their_path_are_allowed(url: str) -> None:
    policy = EgressPolicy(["https://api.example.com/v1"], block_private=True, resolver=resolver(PUBLIC))
    await policy.check("https://api.example.com/v1/chat/completions")
    with pytest.raises(EgressDenied):
        await policy.check(url)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "::1", "fd00:ec2::254", "100.64.0.1",
     "0.0.0.0", "::ffff:127.0.0.1", "fe80::1", "224.0.0.1"],
)  # fmt: skip
async def test_allowed_names_resolving_to_internal_addresses_are_refused(address: str) -> None:
    assert address_blocked(address)
    policy = EgressPolicy(
        ["https://api.example.com"], block_private=True, resolver=resolver({"api.example.com": [address]})
    )
    with pytest.raises(EgressDenied, match="internal address"):
        await policy.check("https://api.example.com/x")


async def test_one_internal_address_among_several_is_enough_to_refuse() -> None:
    table = {"api.example.com": ["93.184.216.34", "10.0.0.5"]}
    policy = EgressPolicy(["https://api.example.com"], block_private=True, resolver=resolver(table))
    with pytest.raises(EgressDenied):
        await policy.check("https://api.example.com/")


async def test_development_skips_address_ranges_but_not_origins() -> None:
    policy = EgressPolicy(["http://127.0.0.1:9000"], block_private=False, resolver=resolver({}))
    await policy.check("http://127.0.0.1:9000/x")
    with pytest.raises(EgressDenied):
        await policy.check("http://127.0.0.1:8002/api/secrets")


async def test_trusted_operator_endpoint_skips_the_range_check_on_its_exact_origin_only() -> None:
    policy = EgressPolicy([], block_private=True, resolver=resolver({}), trusted=["http://10.0.0.7:8000"])
    await policy.check("http://10.0.0.7:8000/v1/chat/completions")
    with pytest.raises(EgressDenied):
        await policy.check("http://10.0.0.7:8001/v1")


async def test_redirects_are_checked_hop_by_hop() -> None:
    async def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.com":
            return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, text="credentials")

    table = {"api.example.com": ["93.184.216.34"], "169.254.169.254": ["169.254.169.254"]}
    policy = EgressPolicy(
        ["https://api.example.com", "http://169.254.169.254"], block_private=True, resolver=resolver(table)
    )
    transport = EgressTransport(policy, inner=httpx.MockTransport(upstream))
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        with pytest.raises(EgressDenied):
            await client.get("https://api.example.com/start")


async def test_http_get_tool_reports_a_refusal_without_fetching() -> None:
    policy = EgressPolicy(["https://api.example.com"], block_private=True, resolver=resolver(PUBLIC))
    with pytest.raises(ToolError, match="allowlist"):
        await make_http_get(policy, 100)({"url": "http://127.0.0.1:8002/api/secrets"})


def test_production_blocks_private_egress_by_default_and_development_does_not() -> None:
    prod = ExecutorSettings(env="production", internal_secret="x" * 40, secrets_kek="k1:" + "m" * 40)
    assert prod.block_private_egress
    assert not ExecutorSettings(env="development").block_private_egress
    with pytest.raises(ValueError, match="SOUS_SECRETS_KEK"):
        ExecutorSettings(env="production", internal_secret="x" * 40)


async def test_a_url_is_parsed_once_but_its_host_resolved_on_every_check() -> None:
    resolved: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        resolved.append(host)
        return ["93.184.216.34"] if len(resolved) == 1 else ["10.0.0.7"]

    policy = EgressPolicy(["https://api.example.com/v1"], block_private=True, resolver=resolve)
    url = f"https://api.example.com/v1/chat/{len(resolved)}-parsed-once"
    target_of.cache_clear()
    await policy.check(url)
    # The same URL again: not parsed again, but resolved again, and a name that now points inside is refused.
    with pytest.raises(EgressDenied, match="internal address"):
        await policy.check(url)
    assert target_of.cache_info().misses == 1 and target_of.cache_info().hits == 1
    assert resolved == ["api.example.com", "api.example.com"]

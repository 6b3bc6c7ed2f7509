"""Unit tests: the model client's connection pool follows the runs an instance may carry."""

from __future__ import annotations

from typing import cast

import httpx2
import pytest

from sous_executor.config import ExecutorSettings
from sous_executor.llm.client import ClientFactory, ModelTarget
from sous_executor.llm.transport import AiohttpTransport
from sous_executor.secrets.resolver import Credentials
from sous_executor.secrets.store import SecretStore

pytestmark = pytest.mark.unit

TARGET = ModelTarget(base_url="http://127.0.0.1:8090/v1", api_key="k", model="m", temperature=None, max_tokens=None)


def pool_limit(settings: ExecutorSettings) -> int:
    """The most connections of the aiohttp pool the factory's client sends through (each one kept alive)."""
    # Building a client resolves no credential: the store is never reached.
    factory = ClientFactory(settings, Credentials(cast(SecretStore, None), {}))
    http_client = factory.client(TARGET)._client
    assert isinstance(http_client, httpx2.AsyncClient)
    inner = http_client._transport.inner  # type: ignore[attr-defined]
    assert isinstance(inner, AiohttpTransport)
    return inner.max_connections


def test_the_default_pool_holds_twice_the_runs_in_flight_and_keeps_them_alive() -> None:
    assert ExecutorSettings(max_inflight=500).llm_connection_limit == 1000
    assert pool_limit(ExecutorSettings(max_inflight=500)) == 1000


def test_a_small_instance_still_gets_at_least_a_hundred_connections() -> None:
    assert ExecutorSettings(max_inflight=8).llm_connection_limit == 100


def test_an_explicit_limit_wins() -> None:
    settings = ExecutorSettings(max_inflight=500, llm_max_connections=64)
    assert settings.llm_connection_limit == 64
    assert pool_limit(settings) == 64


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="llm_max_connections"):
        ExecutorSettings(llm_max_connections=0)

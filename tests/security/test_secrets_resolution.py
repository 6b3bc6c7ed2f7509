"""Keys by reference (unit): workspace secrets, granted variables, one generic error, sanitized provider text."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from sous_executor.config import ExecutorSettings
from sous_executor.llm.client import ClientFactory, ModelConfigError, resolve_target
from sous_executor.llm.errors import upstream_message
from sous_executor.secrets.resolver import Credentials

pytestmark = pytest.mark.unit


class FakeStore:
    """The store's reveal() only: {(workspace, name): value}."""

    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values

    async def reveal(self, workspace_id: str, name: str) -> str | None:
        return self.values.get((workspace_id, name))


ENVIRON = {"ACME_OPENAI_KEY": "sk-acme", "SOUS_INTERNAL_SECRET": "internal"}


def factory(settings: ExecutorSettings | None = None) -> ClientFactory:
    settings = settings or ExecutorSettings(env="development", model_base_url="http://127.0.0.1:8090/v1")
    store: Any = FakeStore({("w1", "openai"): "sk-w1"})
    return ClientFactory(settings, Credentials(store, {"w1": ["ACME_OPENAI_KEY"]}, environ=ENVIRON))


async def test_keys_come_from_the_workspaces_own_secret_or_a_granted_variable() -> None:
    clients = factory()
    target = await clients.target({"provider": "openai", "api_key_secret": "openai"}, "w1")
    assert (target.base_url, target.api_key) == ("https://api.openai.com/v1", "sk-w1")
    granted = await clients.target({"provider": "openai", "api_key_env": "ACME_OPENAI_KEY"}, "w1")
    assert granted.api_key == "sk-acme"
    assert (await clients.target({"provider": "offline"}, "w2")).api_key == "offline"


async def test_every_unresolvable_reference_gets_the_same_error() -> None:
    clients = factory()
    messages = set()
    for config, workspace in [
        ({"api_key_secret": "openai"}, "w2"),  # another workspace's secret
        ({"api_key_secret": "missing"}, "w1"),
        ({"api_key_env": "SOUS_INTERNAL_SECRET"}, "w1"),  # exists, not granted
        ({"api_key_env": "NOT_SET_ANYWHERE"}, "w1"),
        ({"api_key_env": "ACME_OPENAI_KEY"}, "w2"),  # granted to w1 only
    ]:
        with pytest.raises(ModelConfigError) as refused:
            await clients.target({"provider": "openai", **config}, workspace)
        messages.add(str(refused.value))
    assert len(messages) == 1
    (message,) = messages
    assert "SOUS_INTERNAL_SECRET" not in message and "openai" not in message


async def test_model_endpoints_are_matched_by_exact_origin() -> None:
    clients = factory()
    await clients.target({"provider": "offline", "base_url": "http://127.0.0.1:8090/v1"}, "w1")
    for url in (
        "http://127.0.0.1:8002/v1",
        "http://127.0.0.1/v1",
        "https://api.openai.com:444/v1",
        "https://evil.test/v1",
    ):
        with pytest.raises(ModelConfigError, match="egress"):
            await clients.target({"provider": "openai", "base_url": url}, "w1")


async def test_production_refuses_unpriced_models_unless_priced() -> None:
    prod = dict(env="production", internal_secret="x" * 40, secrets_kek="k1:" + "m" * 40)
    settings = ExecutorSettings(**prod, model_base_url="https://models.example/v1")
    clients = factory(settings)
    with pytest.raises(ModelConfigError, match="no price"):
        await clients.target({"provider": "offline", "model_id": "house-model"}, "w1")
    assert (await clients.target({"provider": "offline", "model_id": "gpt-4o-2024-08-06"}, "w1")).model
    priced = ExecutorSettings(**prod, model_base_url="https://models.example/v1", price_table='{"house-model": {}}')
    await factory(priced).target({"provider": "offline", "model_id": "house-model"}, "w1")
    with pytest.raises(ModelConfigError):
        resolve_target({"provider": "offline", "model_id": "house-model"}, settings)


def test_the_workspace_free_resolution_refuses_key_references() -> None:
    settings = ExecutorSettings(env="development", model_base_url="http://127.0.0.1:8090/v1")
    assert resolve_target({"provider": "offline"}, settings).api_key == "offline"
    with pytest.raises(ModelConfigError):
        resolve_target({"provider": "openai", "api_key_env": "SOUS_INTERNAL_SECRET"}, settings)


def status_error(status: int, body: Any) -> openai.APIStatusError:
    request = httpx.Request("POST", "https://api.example/v1/chat/completions")
    return openai.APIStatusError("error", response=httpx.Response(status, request=request), body=body)


def test_provider_error_text_is_reduced_to_a_status_sentence_and_a_code() -> None:
    echoed = {"error": {"message": "Incorrect API key provided: sk-abc***wxyz", "code": "invalid_api_key"}}
    assert (
        upstream_message(status_error(401, echoed)) == "authentication with the model provider failed (invalid_api_key)"
    )
    assert "sk-" not in upstream_message(status_error(400, {"error": {"message": "sk-123", "code": "sk-123"}}))
    assert upstream_message(status_error(503, "upstream said sk-live-1")) == "the model provider failed"

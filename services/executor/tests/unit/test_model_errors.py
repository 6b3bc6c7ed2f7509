"""Unit tests: model client exceptions mapped to step error types, transient or not."""

from __future__ import annotations

import httpx
import openai
import pytest

from sous_executor.engine.attempt import classify
from sous_executor.llm.client import ModelConfigError
from sous_executor.llm.errors import model_failure

pytestmark = pytest.mark.unit
REQUEST = httpx.Request("POST", "https://api.example/v1/chat/completions")


def status_error(status: int) -> openai.APIStatusError:
    response = httpx.Response(status, request=REQUEST)
    error_class = openai.RateLimitError if status == 429 else openai.APIStatusError
    return error_class("error", response=response, body={"error": {"code": "some_code"}})


@pytest.mark.parametrize(
    ("error", "error_type", "transient"),
    [
        (status_error(429), "rate_limited", True),
        (status_error(503), "model_error", True),
        (status_error(408), "model_error", True),
        (status_error(401), "model_error", False),
        (openai.APIConnectionError(request=REQUEST), "model_unavailable", True),
        (ModelConfigError("no key"), "config_error", False),
    ],
)
def test_model_errors_map_to_a_type_and_transience(error: Exception, error_type: str, transient: bool) -> None:
    failure = model_failure(error)
    assert failure is not None and (failure.error_type, failure.transient) == (error_type, transient)
    assert classify(error, None).error_type == error_type


def test_messages_keep_only_status_and_code() -> None:
    failure = model_failure(status_error(401))
    assert failure is not None
    assert failure.message == "model error 401: authentication with the model provider failed (some_code)"


def test_other_exceptions_are_not_model_errors() -> None:
    assert model_failure(ValueError("x")) is None
    assert classify(ValueError("x"), None).error_type == "error"
    assert classify(TimeoutError(), 2.0).error_type == "timeout"

"""Model errors as steps see them: which error type a client exception is, and what its message may say.

A step error may say of a provider's error only a status, a code and a fixed sentence.

Providers echo parts of a rejected key ("Incorrect API key provided: sk-ab***xyz") and other request
details in their error text; none of it is passed on, only a short code the provider gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import openai

from sous_executor.llm.client import ModelConfigError
from sous_executor.llm.completion import ModelResponseInvalid

_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MESSAGES = {
    400: "the provider refused the request",
    401: "authentication with the model provider failed",
    403: "the model provider denied access",
    404: "the model or endpoint was not found",
    408: "the model provider timed out",
    409: "the model provider reported a conflict",
    413: "the request is too large for the model provider",
    422: "the provider could not process the request",
    429: "rate limited by the model provider",
}


def _code(body: Any) -> str | None:
    inner = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return None
    for key in ("code", "type"):
        value = inner.get(key)
        if isinstance(value, str) and _CODE.match(value) and not value.lower().startswith(("sk-", "sk_")):
            return value
    return None


def upstream_message(exc: openai.APIStatusError) -> str:
    status = exc.status_code
    text = _MESSAGES.get(status, "the model provider failed" if status >= 500 else "the model provider refused")
    code = _code(exc.body)
    return f"{text} ({code})" if code else text


@dataclass(frozen=True)
class ModelFailure:
    """A model call's failure as a step records it; `transient` when the same call may succeed later."""

    message: str
    error_type: str
    transient: bool


def model_failure(error: BaseException) -> ModelFailure | None:
    """The failure a model client exception stands for; None when `error` is not one."""
    if isinstance(error, ModelConfigError):
        return ModelFailure(str(error), "config_error", transient=False)
    if isinstance(error, openai.RateLimitError):
        return ModelFailure(f"model rate limited (429): {upstream_message(error)}", "rate_limited", transient=True)
    if isinstance(error, openai.APIStatusError):
        transient = error.status_code >= 500 or error.status_code == 408
        return ModelFailure(f"model error {error.status_code}: {upstream_message(error)}", "model_error", transient)
    if isinstance(error, ModelResponseInvalid):
        return ModelFailure(f"model error: {error}", "model_error", transient=True)
    if isinstance(error, openai.APIConnectionError):
        return ModelFailure(f"model unreachable: {error}", "model_unavailable", transient=True)
    return None

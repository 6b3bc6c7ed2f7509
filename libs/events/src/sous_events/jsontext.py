"""JSON text for the database and the hot paths: orjson, with the standard library as the fallback.

orjson is several times faster than `json` on the payloads the engine writes per step (envelopes, read-model
rows). It refuses a few values the standard library accepts (integers beyond 64 bits, non-string keys, lone
surrogates); those fall back to `json`, so the result never depends on which codec ran, only the speed does.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """`value` as JSON text (UTF-8, no spaces)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)

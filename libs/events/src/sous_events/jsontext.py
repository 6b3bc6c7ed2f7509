"""JSON text written on the hot paths: orjson, with the standard library as the fallback.

orjson is several times faster than `json` on what the engine writes per step (read-model rows, JSONB
values). It refuses a few values the standard library accepts (integers beyond 64 bits, non-string keys,
lone surrogates); those fall back to `json`, so the text never depends on which codec ran. Reading stays
with the standard library: orjson reads an integer beyond 64 bits as a float, which would change the value.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """`value` as JSON text; what orjson refuses is written exactly as the standard library writes it."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)
